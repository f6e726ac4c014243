import torch, time, sys, itertools
from ddpm_nb.presets import load_preset
from ddpm_nb.unet import UNet, param_count
from ddpm_nb.diffusion import Diffusion
torch.manual_seed(0)
def run(over, B, bf16, cl, n=6):
    p = load_preset('workshop', 'settings.ini', **over)
    m = UNet.from_preset(p)
    mf = torch.channels_last if cl else torch.contiguous_format
    m.to(memory_format=mf)
    d = Diffusion.from_preset(p)
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    x = torch.randn(B,1,28,28).contiguous(memory_format=mf); y = torch.randint(0,10,(B,))
    ts=[]
    for i in range(n+2):
        t0=time.time()
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16):
            loss = d.training_losses(m, x, y)['loss'].float().mean()
        opt.zero_grad(); loss.backward(); opt.step()
        ts.append(time.time()-t0)
    ts=sorted(ts[2:]); med=ts[len(ts)//2]
    print(f"{over} B={B} bf16={bf16} cl={cl} params={param_count(m)} {B/med:.0f} img/s", flush=True)
for over in eval(sys.argv[1]):
    for B in eval(sys.argv[2]):
        for bf16, cl in [(False,True),(True,True),(True,False)]:
            run(over, B, bf16, cl)
