"Tests for ddpm_nb.unet, run against the installed package in a fresh process (no notebook globals)."
import math

import pytest
import torch
from torch import nn

from ddpm_nb.presets import load_preset
from ddpm_nb.unet import (AttentionBlock, Downsample, ResBlock, TimeEmbedding, UNet, Upsample, param_count,
                          summary, timestep_embedding)

OFFICIAL_DDPM_CIFAR10 = 35_746_307   # diffusion_tf's CIFAR-10 model (Ho et al. 2020 report 35.7M)


def tiny(**kw):
    args = dict(in_channels=1, image_size=16, base_channels=8, channel_mults=(1, 2), num_res_blocks=1,
                attention_resolutions=(8,), num_classes=10)
    return UNet(**{**args, **kw})


def batch(n=4, c=1, s=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, c, s, s, generator=g), torch.randint(0, 1000, (n,), generator=g)


def perturb(model, seed=0):
    "Give the zero-initialised output conv and class tables random values, as training would."
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.startswith('out.2') or 'class_emb' in name: p.copy_(0.3 * torch.randn(p.shape, generator=g))
    return model


def test_timestep_embedding():
    e = timestep_embedding(torch.tensor([0, 1, 999]), 8)
    assert e.shape == (3, 8)
    assert torch.equal(e[0], torch.tensor([0., 0, 0, 0, 1, 1, 1, 1]))
    # second computation: exp(i t w) in float64; float32 rounding of t*w is < 1e-4 for t < 1000
    t = torch.tensor([3., 12.5, 999.])
    w = 10000. ** (-torch.arange(16, dtype=torch.float64) / 15)
    z = torch.polar(torch.ones(3, 16, dtype=torch.float64), t.double()[:, None] * w)
    torch.testing.assert_close(timestep_embedding(t, 32), torch.cat([z.imag, z.real], 1).float(), atol=1e-3, rtol=0)
    assert timestep_embedding(t, 7).shape == (3, 7) and (timestep_embedding(t, 7)[:, -1] == 0).all()
    assert TimeEmbedding(16)(t).shape == (3, 64)


@pytest.mark.parametrize('size,c,mults,attn', [(8, 1, (1, 2), (4,)), (16, 1, (1, 2), ()),
                                               (28, 1, (1, 2, 2), (7,)), (32, 3, (1, 2, 2), (16,))])
@pytest.mark.parametrize('conditioning', ['bias', 'film', 'none'])
def test_shapes(size, c, mults, attn, conditioning):
    ncls = None if conditioning == 'none' else 10
    m = UNet(c, size, 8, mults, 1, attn, num_classes=ncls, conditioning=conditioning)
    x, t = batch(3, c, size)
    y = None if ncls is None else torch.tensor([0, 9, 10])
    assert m(x, t.float() + 0.5, y).shape == x.shape


def test_output_starts_at_zero():
    x, t = batch()
    assert torch.equal(tiny()(x, t, torch.tensor([0, 1, 2, 10])), torch.zeros_like(x))


def test_class_changes_output_and_null_class():
    m = perturb(tiny()).eval()
    x, t = batch(1)
    x, t = x.expand(4, -1, -1, -1), t.expand(4)
    with torch.no_grad(): o = m(x, t, torch.tensor([0, 1, 5, 10]))
    for i in range(1, 4): assert (o[0] - o[i]).abs().max() > 1e-4
    assert m.num_classes == 10 and m.null_class == 10
    assert m.down[0][0].class_emb.num_embeddings == 11


def test_unconditional():
    m = tiny(num_classes=None)
    assert m.num_classes is None and m.null_class is None
    assert all(b.class_emb is None for b in m.modules() if isinstance(b, ResBlock))
    x, t = batch()
    assert m(x, t).shape == x.shape
    assert tiny(num_classes=None, conditioning='none').conditioning == 'none'


def test_bias_vs_film():
    bias, film = tiny(), tiny(conditioning='film')
    assert film.conditioning == 'film' and bias.conditioning == 'bias'
    rb, rf = bias.down[0][0], film.down[0][0]
    assert rf.time_proj.out_features == 2 * rb.time_proj.out_features
    assert rf.class_emb.weight.shape[1] == 2 * rb.class_emb.weight.shape[1]
    # with zero conditioning, FiLM (1 + 0) * GN(h) + 0 equals the bias block GN(h + 0)
    x, emb, y = torch.randn(2, 8, 6, 6), torch.randn(2, 32), torch.tensor([1, 10])
    a, b = ResBlock(8, 16, 32, 10, conditioning='film'), ResBlock(8, 16, 32, 10)
    b.load_state_dict({k: v for k, v in a.state_dict().items() if 'proj' not in k and 'class' not in k}, strict=False)
    for r in (a, b): nn.init.zeros_(r.time_proj.weight); nn.init.zeros_(r.time_proj.bias)
    torch.testing.assert_close(a(x, emb, y), b(x, emb, y), atol=1e-6, rtol=0)


def test_learned_variance_output():
    m = tiny(out_channels=2)
    x, t = batch()
    assert m(x, t, torch.zeros(4, dtype=torch.long)).shape == (4, 2, 16, 16)
    assert UNet.from_preset('digits', learned_variance=True).out_channels == 2
    assert UNet.from_preset(load_preset('digits', variance='learned')).out_channels == 2
    assert UNet.from_preset('digits').out_channels == 1


def test_gradients_reach_class_embedding():
    m = tiny()
    x, t = batch()
    y = torch.tensor([0, 1, 2, 10])
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    for _ in range(2):   # the first step moves only the zero-initialised output conv
        opt.zero_grad(); (m(x, t, y) - x).pow(2).mean().backward(); opt.step()
    for blk in (b for b in m.modules() if isinstance(b, ResBlock)):
        g = blk.class_emb.weight.grad
        assert (g[[0, 1, 2, 10]].abs().sum(1) > 0).all()
        assert g[3:10].abs().sum() == 0


def test_attention_matches_explicit_softmax():
    blk, x = AttentionBlock(16, heads=2), torch.randn(2, 16, 5, 5)
    B, C, H, W = x.shape
    q, k, v = blk.qkv(blk.norm(x)).reshape(B, 3, 2, C // 2, H * W).unbind(1)
    a = torch.softmax(torch.einsum('bndi,bndj->bnij', q, k) / math.sqrt(C // 2), -1)
    ref = x + blk.proj(torch.einsum('bnij,bndj->bndi', a, v).reshape(B, C, H, W))
    torch.testing.assert_close(blk(x), ref, atol=1e-5, rtol=1e-5)


def test_resampling_ladder():
    assert Downsample(4)(torch.randn(1, 4, 28, 28)).shape[-1] == 14
    assert Upsample(4)(torch.randn(1, 4, 7, 7)).shape[-1] == 14
    with pytest.raises(ValueError, match=r'must divide by 2\*\*3'): UNet(1, 28, 8, (1, 2, 2, 2))
    with pytest.raises(ValueError, match='not in the ladder'): UNet(1, 28, 8, (1, 2, 2), attention_resolutions=(16,))


def test_param_counts():
    with torch.device('meta'):
        paper = UNet.from_preset(load_preset('cifar10', num_classes=0))
        ours = UNet.from_preset('cifar10')
    assert param_count(paper) == OFFICIAL_DDPM_CIFAR10
    assert ours.num_classes == 10 and abs(param_count(ours) / OFFICIAL_DDPM_CIFAR10 - 1) < 0.01
    assert param_count(ours) > param_count(paper)


def test_from_preset_rules():
    m = UNet.from_preset('mnist')
    assert (m.in_channels, m.image_size, m.num_classes, m.conditioning) == (1, 28, 10, 'bias')
    assert UNet.from_preset(load_preset('digits', num_classes=0)).num_classes is None
    u = UNet.from_preset(load_preset('digits', conditioning='none'))   # 'none' in a preset: ignore the labels
    assert u.num_classes is None and u.conditioning == 'none'


@pytest.mark.parametrize('kw,msg', [
    (dict(num_classes=10, conditioning='none'), 'pass num_classes=None'),
    (dict(num_classes=0), 'or None'),
    (dict(conditioning='adagn'), 'expected one of'),
    (dict(dropout=1.0), 'dropout'),
    (dict(out_channels=0), 'out_channels'),
])
def test_bad_config(kw, msg):
    with pytest.raises(ValueError, match=msg): UNet(**kw)


def test_bad_inputs():
    m, u = tiny(), tiny(num_classes=None)
    x, t = batch()
    y = torch.tensor([0, 1, 2, 10])
    cases = [
        (lambda: m(torch.randn(4, 3, 16, 16), t, y), ValueError, r'built for \(B, 1, 16, 16\)'),
        (lambda: m(torch.randn(4, 1, 28, 28), t, y), ValueError, 'built for'),
        (lambda: m(torch.randn(4, 1, 16, 8), t, y), ValueError, 'built for'),
        (lambda: m(x.long(), t, y), TypeError, 'float tensor'),
        (lambda: m(x, t), ValueError, 'y is required'),
        (lambda: u(x, t, y), ValueError, 'unconditional'),
        (lambda: m(x, t, torch.tensor([0, 1, 2, 11])), ValueError, r'outside 0\.\.10'),
        (lambda: m(x, t, torch.tensor([-1, 1, 2, 3])), ValueError, r'outside 0\.\.10'),
        (lambda: m(x, t, y.float()), TypeError, 'integer tensor'),
        (lambda: m(x, t, y[:1]), TypeError, 'integer tensor'),
        (lambda: m(x, t[:1], y), ValueError, r'expected shape \(4,\)'),
        (lambda: m(x, t[:, None], y), ValueError, r'expected shape \(4,\)'),
        (lambda: m(x, 5, y), TypeError, 't: expected'),
    ]
    for f, exc, msg in cases:
        with pytest.raises(exc, match=msg): f()


def test_batch_independence_channels_last_bf16():
    m = perturb(tiny()).eval()
    x, t = batch()
    y = torch.tensor([0, 1, 2, 10])
    with torch.no_grad():
        ref = m(x, t, y)
        single = torch.cat([m(x[i:i + 1], t[i:i + 1], y[i:i + 1]) for i in range(4)])
        torch.testing.assert_close(single, ref, atol=1e-5, rtol=1e-5)
        m.to(memory_format=torch.channels_last)
        torch.testing.assert_close(m(x.to(memory_format=torch.channels_last), t, y), ref, atol=1e-5, rtol=1e-5)
        with torch.autocast('cpu', dtype=torch.bfloat16): o = m(x, t, y)
    assert o.dtype == torch.bfloat16
    torch.testing.assert_close(o.float(), ref, atol=5e-2, rtol=5e-2)   # bf16 keeps ~3 significant digits


def test_time_embedding_once_per_forward():
    m, calls = tiny(), []
    m.time_embed.register_forward_hook(lambda *a: calls.append(1))
    x, t = batch()
    m(x, t, torch.zeros(4, dtype=torch.long))
    assert len(calls) == 1


def test_summary():
    m = tiny()
    x, t = batch(2)
    s = summary(m, x, t, torch.tensor([0, 10]))
    assert f'{param_count(m):,}' in s.splitlines()[-1]
    assert 'AttentionBlock' in s and 'Downsample' in s and '(2, 1, 16, 16)' in s.splitlines()[-2]


@pytest.mark.parametrize('size,c,mults,attn', [(16, 1, (1, 2), (4,)), (28, 1, (1, 2), (7,)), (32, 3, (1, 2, 2), (8,))])
def test_patches_shapes_and_ladder(size, c, mults, attn):
    m = perturb(UNet(c, size, 8, mults, 1, attn, num_classes=10, patch_size=2))
    x, t = batch(3, c, size)
    out = m(x, t, torch.tensor([0, 9, 10]))
    assert out.shape == x.shape and out.abs().sum() > 0
    assert m.conv_in.in_channels == 4 * c and m.out[-1].out_channels == 4 * c
    assert UNet(c, size, 8, mults, 1, attn, num_classes=10, patch_size=2)(x, t, torch.zeros(3, dtype=torch.long)).abs().max() == 0


def test_patches_unfold_output_channels_into_pixels():
    "The fold is a permutation, and output channel c*4 + 2i + j becomes pixel (2h + i, 2w + j)."
    x, _ = batch(2, 3, 16)
    assert torch.equal(torch.nn.functional.pixel_shuffle(torch.nn.functional.pixel_unshuffle(x, 2), 2), x)
    m = UNet(1, 16, 8, (1, 2), 1, patch_size=2)
    with torch.no_grad():
        m.out[-1].bias.copy_(torch.tensor([1., 2., 3., 4.]))      # zero weights: the output is the bias, unfolded
    o = m(*batch(1, 1, 16))[0, 0]
    assert torch.equal(o[0::2, 0::2], torch.full((8, 8), 1.)) and torch.equal(o[1::2, 1::2], torch.full((8, 8), 4.))
    assert torch.equal(o[0::2, 1::2], torch.full((8, 8), 2.)) and torch.equal(o[1::2, 0::2], torch.full((8, 8), 3.))


def test_patches_from_preset_learned_variance_and_old_presets():
    p = load_preset('workshop', patch_size=2, channel_mults=(2, 4))
    m = UNet.from_preset(p)
    assert m.patch_size == 2 and m.conv_in.in_channels == 4
    lv = UNet.from_preset(p.replace(variance='learned'))
    assert lv.out_channels == 2 and lv.out[-1].out_channels == 8
    x, t = batch(2, 1, 28)
    assert lv(x, t, torch.tensor([1, 10])).shape == (2, 2, 28, 28)
    assert UNet.from_preset('digits').patch_size == 1 and UNet.from_preset('workshop').patch_size == 2


@pytest.mark.parametrize('kw,msg', [(dict(patch_size=0), 'patch_size=0'), (dict(patch_size=3), 'divide by patch_size 3'),
                                    (dict(patch_size=2, channel_mults=(1, 2, 2, 2, 2)), '16 / patch_size 2: 8 must divide by 2\\*\\*4'),
                                    (dict(patch_size=2, attention_resolutions=(16,)), r'not in the ladder \[8, 4\]')])
def test_patches_bad_config(kw, msg):
    with pytest.raises(ValueError, match=msg): tiny(**kw)


def test_patches_batch_independence_channels_last_bf16():
    m = perturb(tiny(patch_size=2)).eval()
    x, t = batch()
    y = torch.tensor([0, 1, 2, 10])
    with torch.no_grad():
        ref = m(x, t, y)
        assert torch.allclose(ref, torch.cat([m(x[i:i + 1], t[i:i + 1], y[i:i + 1]) for i in range(4)]), atol=1e-5)
        cl = m.to(memory_format=torch.channels_last)
        assert torch.allclose(cl(x.to(memory_format=torch.channels_last), t, y), ref, atol=1e-5)
        with torch.autocast('cpu', dtype=torch.bfloat16): o16 = cl(x, t, y)
    assert o16.dtype == torch.bfloat16 and torch.allclose(o16.float(), ref, atol=5e-2)
