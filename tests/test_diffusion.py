"Diffusion in a fresh process: every option combination trains, samplers' shapes/seeds/call counts, errors."
import itertools, pytest, torch
from ddpm_nb.schedules import Schedule
from ddpm_nb.forward import q_sample, q_posterior, predict_eps_from_x0
from ddpm_nb.unet import UNet
from ddpm_nb.diffusion import Diffusion, spaced_timesteps, LossAwareSampler, SchedulerAdapter
from ddpm_nb.testing import Oracle

def tiny_unet(num_classes=3, learned=False):
    return UNet(in_channels=1, image_size=8, base_channels=8, channel_mults=(1, 2), num_res_blocks=1,
                num_classes=num_classes, out_channels=2 if learned else None)

COMBOS = [(p, v, l) for p, v, l in itertools.product(['eps', 'x0', 'v'], ['fixed_small', 'fixed_large', 'learned'], ['simple', 'vlb', 'hybrid'])
          if not (l == 'simple' and v == 'learned') and not (l == 'hybrid' and v != 'learned')]

@pytest.mark.parametrize('prediction, variance, loss', COMBOS)
def test_each_option_combination_learns_a_fixed_batch(prediction, variance, loss):
    torch.manual_seed(0)
    d = Diffusion(Schedule.from_name('cosine', 20), prediction, variance, loss, p_uncond=0.2)
    net = tiny_unet(learned=variance == 'learned')
    g = torch.Generator().manual_seed(0)
    x0, y = torch.rand(8, 1, 8, 8, generator=g) * 2 - 1, torch.arange(8) % 3
    t, eps = torch.randint(0, 20, (8,), generator=g), torch.randn(8, 1, 8, 8, generator=g)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    first = None
    for _ in range(25):
        loss_v = d.training_losses(net, x0, y, t=t, eps=eps)['loss'].mean()
        opt.zero_grad(); loss_v.backward(); opt.step()
        first = loss_v.item() if first is None else first
    assert torch.isfinite(loss_v) and loss_v.item() < first     # same batch, t and eps: the loss must fall

def test_incoherent_combinations_raise():
    d = Diffusion(Schedule.from_name('cosine', 10), variance='learned', loss_type='simple')
    with pytest.raises(ValueError, match='learned variance no gradient'):
        d.training_losses(tiny_unet(learned=True), torch.zeros(2, 1, 8, 8), torch.zeros(2, dtype=torch.long))
    d = Diffusion(Schedule.from_name('cosine', 10), variance='learned', loss_type='vlb')
    with pytest.raises(ValueError, match='2 x in_channels'):
        d.training_losses(tiny_unet(learned=False), torch.zeros(2, 1, 8, 8), torch.zeros(2, dtype=torch.long))

class Counting(torch.nn.Module):
    def __init__(self, net): super().__init__(); self.net, self.calls = net, []
    num_classes = property(lambda s: s.net.num_classes); null_class = property(lambda s: s.net.null_class)
    def forward(self, x, t, y=None): self.calls.append(x.shape[0]); return self.net(x, t, y)

@pytest.mark.parametrize('sampler', ['ancestral', 'ddim'])
def test_samplers_shape_dtype_seed_and_call_count(sampler):
    d = Diffusion(Schedule.from_name('cosine', 30))
    net = Counting(tiny_unet())
    y = torch.tensor([0, 1, 2, 0])
    a = d.sample(net, (4, 1, 8, 8), y, steps=6, sampler=sampler, generator=torch.Generator().manual_seed(1))
    assert a.shape == (4, 1, 8, 8) and a.dtype == torch.float32 and net.calls == [4] * 6
    b = d.sample(net, (4, 1, 8, 8), y, steps=6, sampler=sampler, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    net.calls.clear()
    d.sample(net, (4, 1, 8, 8), y, steps=5, sampler=sampler, guidance=2.0)
    assert net.calls == [8] * 5                      # conditional + unconditional in one batch per step

def test_guidance_zero_is_the_conditional_model():
    d = Diffusion(Schedule.from_name('cosine', 10))
    net = tiny_unet()
    torch.nn.init.normal_(net.out[-1].weight, std=0.1)         # the last conv starts at zero: make the output non-trivial
    x, t, y = torch.randn(3, 1, 8, 8), torch.tensor([1, 5, 9]), torch.tensor([0, 1, 2])
    ref = net(x, t, y)
    assert ref.abs().max() > 0
    torch.testing.assert_close(d.model_out(net, x, t, y, guidance=0.0), ref)

def test_reverse_step_with_true_x0_is_the_posterior():
    d = Diffusion(Schedule.from_name('linear', 100))
    x0 = torch.rand(4, 1, 3, 3, dtype=torch.float64) * 2 - 1
    t = torch.tensor([1, 20, 50, 99]); xt = q_sample(d.schedule, x0, t)
    oracle = lambda x, tt, y=None: predict_eps_from_x0(d.schedule, x, tt, x0)
    p = d.p_mean_var(oracle, xt, t, clip_x0=False)
    mean, var, _ = q_posterior(d.schedule, x0, xt, t)
    torch.testing.assert_close(p['mean'], mean); torch.testing.assert_close(p['var'], var)

def test_respacing_keeps_alpha_bar():
    d = Diffusion(Schedule.from_name('linear', 1000))
    ts = spaced_timesteps(1000, 37)
    torch.testing.assert_close(d.respace(ts).schedule.alpha_bar, d.schedule.alpha_bar[ts], rtol=0, atol=1e-13)

def test_ddim_inversion_roundtrip_with_exact_predictor():
    full = Diffusion(Schedule.from_name('cosine', 50))
    d = full.respace(spaced_timesteps(50, 10))
    x0 = torch.rand(3, 1, 2, 2, dtype=torch.float64) * 2 - 1
    z = d.ddim_invert(Oracle(full.schedule, x0), x0)            # the oracle is called with the original timesteps
    torch.testing.assert_close(d.sample(Oracle(full.schedule, x0), x0.shape, x_T=z, sampler='ddim', clip_x0=False), x0,
                               rtol=0, atol=1e-8)

def test_loss_aware_sampler_reweights():
    s = LossAwareSampler(5, history=1)
    s.update(torch.arange(5), torch.tensor([1., 1., 1., 1., 6.]))
    t, w = s.sample(20000, generator=torch.Generator().manual_seed(0))
    assert abs((t == 4).float().mean().item() - 0.6) < 0.02 and abs((w * (t == 4)).mean().item() - 0.2) < 0.02

def test_scheduler_adapter_matches_sampler():
    d = Diffusion(Schedule.from_name('cosine', 40))
    net = tiny_unet(); y = torch.tensor([0, 2])
    sch = SchedulerAdapter(d); sch.set_timesteps(8)
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 1, 8, 8, generator=g)
    with torch.no_grad():
        for t in sch.timesteps: x = sch.step(net(x, torch.full((2,), int(t)), y), t, x, generator=g).prev_sample
    torch.testing.assert_close(x, d.sample(net, (2, 1, 8, 8), y, steps=8, generator=torch.Generator().manual_seed(3)))

@pytest.mark.parametrize('kwargs, msg', [
    (dict(guidance=1.0, y=None), 'needs a conditional model'),
    (dict(steps=31), 'integer in 1..30'),
    (dict(steps=0), 'integer in 1..30'),
    (dict(sampler='plms'), "unknown sampler 'plms'"),
])
def test_bad_sampling_input_unconditional(kwargs, msg):
    d = Diffusion(Schedule.from_name('cosine', 30))
    with pytest.raises(ValueError, match=msg): d.sample(tiny_unet(num_classes=None), (2, 1, 8, 8), **kwargs)

def test_bad_labels_and_batch():
    d = Diffusion(Schedule.from_name('cosine', 30))
    net = tiny_unet()
    with pytest.raises(ValueError, match='pass labels y'): d.sample(net, (2, 1, 8, 8))
    with pytest.raises(ValueError, match=r'shape \(2,\)'): d.sample(net, (2, 1, 8, 8), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match='labels must lie in 0..3'): d.sample(net, (2, 1, 8, 8), torch.tensor([0, 9]))
    with pytest.raises(ValueError, match='B >= 1'): d.sample(net, (0, 1, 8, 8), torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError, match='unconditional'): d.sample(tiny_unet(None), (2, 1, 8, 8), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match='NaN or inf'): d.sample(net, (1, 1, 8, 8), torch.zeros(1, dtype=torch.long), x_T=torch.full((1, 1, 8, 8), float('nan')))
