import torch, time, sys
from ddpm_nb.presets import load_preset
from ddpm_nb.unet import UNet, param_count
from ddpm_nb.diffusion import Diffusion
torch.manual_seed(0)
over = eval(sys.argv[1]); B=int(sys.argv[2]); bf16 = sys.argv[3]=='1'
p = load_preset('workshop', 'settings.ini', **over)
m = UNet.from_preset(p); d = Diffusion.from_preset(p)
fn = torch.compile(m)
opt = torch.optim.Adam(m.parameters(), lr=1e-3)
x = torch.randn(B,1,28,28); y = torch.randint(0,10,(B,))
class N:
    num_classes=m.num_classes; null_class=m.null_class
    def __call__(s,x,t,y=None): return fn(x,t,y)
net=N()
t0=time.time(); ts=[]
for i in range(10):
    t1=time.time()
    with torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16):
        loss = d.training_losses(net, x, y)['loss'].float().mean()
    opt.zero_grad(); loss.backward(); opt.step()
    ts.append(time.time()-t1)
    if i==0: print('first step (compile)', round(ts[0],1), flush=True)
ts=sorted(ts[3:]); print(over, B, bf16, f"{B/ts[len(ts)//2]:.0f} img/s compiled")
