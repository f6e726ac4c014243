"""Tests for ddpm_nb.metrics: Fréchet distance closed forms, the real-vs-real floor, class accuracy, the classifier
cache, Inception FID's clear failure without weights, and evaluate_checkpoint writing into a run's card."""
import importlib.util
import json
import math
import time

import pytest
import torch

from ddpm_nb.data import ImageDataset, load_digits
from ddpm_nb.metrics import (Classifier, MetricUnavailable, class_accuracy, classifier_for, classifier_frechet,
                             evaluate_checkpoint, feature_stats, frechet_distance, inception_fid, inception_network,
                             inception_stats, inception_weights_path,
                             predict, train_classifier)
from ddpm_nb.presets import load_preset
from ddpm_nb.train import Trainer

f64 = dict(dtype=torch.float64)


@pytest.fixture(scope='module')
def digits8():
    return load_digits(8)


@pytest.fixture(scope='module')
def clf(digits8):
    "A tiny digits classifier trained on all but the last 359 images (about a second)."
    ds = ImageDataset(digits8.images[:-359], digits8.labels[:-359], 10)
    return train_classifier(ds, steps=150, progress=False)


# --- Fréchet distance against closed forms -------------------------------------------------------------------------

def test_frechet_identical_is_zero():
    g = torch.Generator().manual_seed(0)
    A = torch.randn(20, 20, generator=g, **f64)
    S, mu = A @ A.T, torch.randn(20, generator=g, **f64)
    assert frechet_distance(mu, S, mu, S) == pytest.approx(0.0, abs=1e-9)


def test_frechet_one_dimensional():
    # d^2 = (m1 - m2)^2 + (s1 - s2)^2 for N(m1, s1^2), N(m2, s2^2)
    assert frechet_distance([0.5], [[0.25]], [2.0], [[4.0]]) == pytest.approx(1.5 ** 2 + 1.5 ** 2, rel=1e-12)


def test_frechet_diagonal_and_singular():
    a, b = torch.tensor([2.0, 0.5, 0.0, 3.0], **f64), torch.tensor([1.0, 0.5, 4.0, 0.0], **f64)
    m1, m2 = torch.tensor([1.0, 0.0, -1.0, 2.0], **f64), torch.zeros(4, **f64)
    want = ((m1 - m2) ** 2).sum() + ((a.sqrt() - b.sqrt()) ** 2).sum()
    assert frechet_distance(m1, torch.diag(a), m2, torch.diag(b)) == pytest.approx(want.item(), rel=1e-10)


def test_frechet_rotation_invariant_and_symmetric():
    # a common rotation of both Gaussians leaves d^2 unchanged; swapping the arguments too
    g = torch.Generator().manual_seed(1)
    Q, _ = torch.linalg.qr(torch.randn(5, 5, generator=g, **f64))
    a, b = torch.rand(5, generator=g, **f64) + 0.1, torch.rand(5, generator=g, **f64) + 0.1
    m1, m2 = torch.randn(5, generator=g, **f64), torch.randn(5, generator=g, **f64)
    d = frechet_distance(m1, torch.diag(a), m2, torch.diag(b))
    assert frechet_distance(Q @ m1, Q @ torch.diag(a) @ Q.T, Q @ m2, Q @ torch.diag(b) @ Q.T) == pytest.approx(d, rel=1e-9)
    assert frechet_distance(m2, torch.diag(b), m1, torch.diag(a)) == pytest.approx(d, rel=1e-9)


def test_frechet_bad_input():
    with pytest.raises(ValueError, match='of one D'):
        frechet_distance(torch.zeros(3), torch.eye(3), torch.zeros(2), torch.eye(2))
    with pytest.raises(ValueError, match='NaN'):
        frechet_distance(torch.tensor([math.nan]), torch.eye(1), torch.zeros(1), torch.eye(1))


# --- classifier, accuracy, floor -----------------------------------------------------------------------------------

def test_classifier_shapes():
    c = Classifier(image_size=16)
    assert c(torch.zeros(3, 1, 16, 16)).shape == (3, 10) and c.features(torch.zeros(3, 1, 16, 16)).shape == (3, 128)
    with pytest.raises(ValueError, match='image_size=8'):
        c(torch.zeros(3, 1, 8, 8))


def test_class_accuracy(clf, digits8):
    own = predict(clf, digits8.images)
    r = class_accuracy(clf, digits8.images, own)
    assert r['overall'] == 1.0 and r['per_class'] == [1.0] * 10
    held = class_accuracy(clf, digits8.images[-359:], digits8.labels[-359:])
    assert held['overall'] > 0.85, held          # 150 steps on 8x8 digits: ~0.9-0.95 measured
    r = class_accuracy(clf, digits8.images[:3], own[:3])
    assert len(r['per_class']) == 10 and math.isnan(r['per_class'][9])


def test_floor_band_from_its_own_spread(clf, digits8):
    "Clean digits lie within 4 sd of the floor's seed-to-seed spread; noise of 0.5 lies above it (not a fixed 2x/3x)."
    g = torch.Generator().manual_seed(0)
    x = digits8.images[torch.randperm(len(digits8), generator=g)]
    real, fake = x[:900], x[900:1300]
    fl = torch.tensor([classifier_frechet(clf, fake, real, seed=s)['floor'] for s in range(8)])
    lo, hi = fl.mean() - 4 * fl.std(), fl.mean() + 4 * fl.std()
    noisy = (fake + 0.5 * torch.randn(fake.shape, generator=g)).clamp(-1, 1)
    clean, bad = classifier_frechet(clf, fake, real), classifier_frechet(clf, noisy, real)
    assert clean['n'] == bad['n'] == 400
    assert lo < clean['fd'] < hi, (clean, fl)                        # real digits: indistinguishable from the floor
    assert bad['fd'] > hi, (bad, fl)
    with pytest.raises(ValueError, match='2n real'):
        classifier_frechet(clf, fake, real, n=451)


class _Points(torch.nn.Module):
    "A stand-in classifier whose features are the inputs themselves."
    def __init__(self):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))

    def features(self, x): return x.flatten(1)


def test_classwise_frechet_removes_the_class_mix():
    """Two unit Gaussians 4 apart in 2-D, mixed 80/20 in the reference and 50/50 in the samples (drawn from the same
    two). Random halves charge a perfect generator the mixtures' Fréchet distance, a closed form: moments
    mu = sum p_c m_c, Sigma = I + sum p_c (m_c - mu)(m_c - mu)^T. Halves drawn class by class and weighted to the
    samples' shares charge nothing. Both within 4 standard errors of the mean over 6 independent draws."""
    g = torch.Generator().manual_seed(1)
    m = torch.tensor([[0.0, 0.0], [4.0, 0.0]], **f64)
    def draw(counts):
        y = torch.cat([torch.full((c,), k) for k, c in enumerate(counts)])
        return (m[y] + torch.randn(len(y), 2, generator=g, **f64)).float()[:, None, None], y
    def moments(p):
        p = torch.tensor(p, **f64)
        mu = p @ m
        return mu, torch.eye(2, **f64) + ((m - mu).T * p) @ (m - mu)
    truth = frechet_distance(*moments([0.5, 0.5]), *moments([0.8, 0.2]))
    plain, classwise = [], []
    for _ in range(6):
        (real, yr), (fake, yf) = draw([8000, 2000]), draw([2500, 2500])
        a = classifier_frechet(_Points(), fake, real, splits=4)
        b = classifier_frechet(_Points(), fake, real, splits=4, fake_labels=yf, real_labels=yr)
        plain.append(a['fd_mean'] - a['floor_mean'])
        classwise.append(b['fd_mean'] - b['floor_mean'])
        assert b['n_reference'] == 5000 and b['n'] == 5000
    plain, classwise = torch.tensor(plain, **f64), torch.tensor(classwise, **f64)
    se = lambda v: v.std().item() / len(v) ** 0.5
    assert abs(plain.mean().item() - truth) < 4 * se(plain), (plain, truth)
    assert abs(classwise.mean().item()) < 4 * se(classwise), classwise
    with pytest.raises(ValueError, match='no image of class'):
        classifier_frechet(_Points(), fake, real[yr == 0], fake_labels=yf, real_labels=yr[yr == 0])


def test_feature_stats_shapes(clf, digits8):
    mu, sigma = feature_stats(clf, digits8.images[:50], batch_size=16)
    assert mu.shape == (128,) and sigma.shape == (128, 128) and mu.dtype == torch.float64
    assert torch.allclose(sigma, sigma.T)


def test_classifier_cache(tmp_path, digits8):
    a = classifier_for('digits', image_size=8, cache_dir=tmp_path, steps=20, progress=False)
    b = classifier_for('digits', image_size=8, cache_dir=tmp_path, steps=20, progress=False)
    assert (a.info['cached'], b.info['cached']) == (False, True)
    assert sorted(p.suffix for p in tmp_path.iterdir()) == ['.json', '.safetensors']
    assert torch.allclose(a(digits8.images[:8]), b(digits8.images[:8]), atol=1e-6)
    next(tmp_path.glob('*.json')).write_text('{not json')             # a damaged entry is retrained, not trusted
    assert classifier_for('digits', image_size=8, cache_dir=tmp_path, steps=20, progress=False).info['cached'] is False


# --- Inception FID -------------------------------------------------------------------------------------------------

def test_inception_fid_without_weights_is_clear_and_fast(tmp_path, monkeypatch):
    def no_download(*a, **k): raise AssertionError('a download was attempted')
    monkeypatch.setattr(torch.hub, 'load_state_dict_from_url', no_download)
    monkeypatch.setattr(torch.hub, 'download_url_to_file', no_download)
    monkeypatch.setattr(torch.hub, '_hub_dir', str(tmp_path))        # the default path now lies in an empty folder
    assert str(inception_weights_path()).startswith(str(tmp_path))
    x = torch.zeros(4, 3, 8, 8)
    t0 = time.time()
    with pytest.raises(MetricUnavailable) as e:
        inception_fid(x, x)
    assert time.time() - t0 < 5
    msg = str(e.value)
    assert isinstance(e.value, ValueError)
    assert 'github.com' in msg and str(inception_weights_path()) in msg and 'downloaded once' in msg, msg
    assert ('pip install' in msg) == (importlib.util.find_spec('torch_fidelity') is None), msg


def test_inception_fid_runs_with_a_weights_file(tmp_path, monkeypatch):
    "The whole FID path with randomly initialised Inception weights (the real ones need a download); needs the extra."
    fe = pytest.importorskip('torch_fidelity.feature_extractor_inceptionv3')
    monkeypatch.setattr(fe, 'load_state_dict_from_url', lambda *a, **k: None)
    monkeypatch.setattr(fe.FeatureExtractorInceptionV3, 'load_state_dict', lambda self, sd, *a, **k: None)
    with torch.random.fork_rng():
        torch.manual_seed(0); net = fe.FeatureExtractorInceptionV3('inception-v3-compat', ['2048'])
    monkeypatch.undo()
    torch.save(net.state_dict(), tmp_path / 'w.pth')
    net = inception_network(tmp_path / 'w.pth')                       # loads the file (checked weights_only first)
    x = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1   # grey: copied to 3 channels
    ref = inception_stats(x, net)
    assert ref[0].shape == (2048,) and ref[1].shape == (2048, 2048)
    assert inception_fid(x, ref, weights=net) == pytest.approx(0.0, abs=1e-6)
    assert inception_fid(-x, ref, weights=net) > 0


# --- evaluate_checkpoint ---------------------------------------------------------------------------------------------

def test_evaluate_checkpoint_writes_card(tmp_path):
    p = load_preset('digits', image_size=8, base_channels=8, channel_mults=(1, 2), T=20, batch_size=16, steps=5)
    run = tmp_path / 'run'
    Trainer(p, load_digits(8), run, progress=False, ckpt_every=0).fit()
    res = evaluate_checkpoint(run / 'ckpt.pt', n=40, steps=5, bpd_n=16, batch_size=20, cache_dir=tmp_path / 'cache',
                              classifier_kw=dict(steps=20), progress=False, device='cpu')
    card = json.loads((run / 'card.json').read_text())
    assert 'training' in card and set(card['metrics']) == {'accuracy', 'frechet', 'bpd'}
    m = card['metrics']
    assert m['accuracy']['samples'] | {'sampling_time_s': 0} == dict(n=40, sampler='ddim', steps=5, guidance=0.0, seed=0,
                                                                      sampling_time_s=0, precision='fp32', weights='EMA',
                                                                      precision_choice=dict(setting='fp32', chosen='fp32', how='given'))
    assert 0 <= m['accuracy']['overall'] <= 1 and len(m['accuracy']['per_class']) == 10
    assert m['frechet']['n'] == 40 and m['frechet']['fd'] >= 0 and m['frechet']['floor'] >= 0
    assert m['frechet']['halves'].startswith('class by class')          # a conditional model: like with like
    assert set(m['frechet']['classes_ignored']) == {'fd', 'floor', 'fd_mean', 'floor_mean', 'ratio_of_means'}
    assert m['bpd']['n'] == 16 and math.isfinite(m['bpd']['bpd']) and m['bpd']['bpd'] > 0
    assert res['bpd'] == m['bpd']
    evaluate_checkpoint(run / 'ckpt.pt', metrics=['bpd'], bpd_n=8, cache_dir=tmp_path / 'cache', progress=False)
    m2 = json.loads((run / 'card.json').read_text())['metrics']
    assert m2['accuracy'] == m['accuracy'] and m2['bpd']['n'] == 8         # merged, not replaced
    with pytest.raises(ValueError, match="unknown metric 'acc'"):
        evaluate_checkpoint(run / 'ckpt.pt', metrics=['acc'])
    r16 = evaluate_checkpoint(run / 'ckpt.pt', metrics=['accuracy'], n=40, steps=5, batch_size=20, cache_dir=tmp_path / 'cache',
                              classifier_kw=dict(steps=20), progress=False, device='cpu', precision='bf16')
    assert r16['accuracy']['samples']['precision'] == 'bf16' and 0 <= r16['accuracy']['overall'] <= 1
    with pytest.raises(ValueError, match="unknown precision 'fp16'"):
        evaluate_checkpoint(run / 'ckpt.pt', metrics=['accuracy'], precision='fp16', cache_dir=tmp_path / 'cache')
    with pytest.raises(MetricUnavailable):
        evaluate_checkpoint(run / 'ckpt.pt', metrics=['fid'], fid_weights=tmp_path / 'none.pth')


# --- choose_guidance ---------------------------------------------------------------------------------------------------

def test_choose_guidance_refuses_what_it_cannot_choose_for(tmp_path):
    from ddpm_nb.checkpoint import CheckpointError, RunLock
    from ddpm_nb.metrics import choose_guidance
    p = load_preset('digits', image_size=8, base_channels=8, channel_mults=(1, 2), T=20, batch_size=16, steps=3)
    for name, kw in [('plain', dict(p_uncond=0.0)), ('guided', {})]:
        Trainer(p.replace(**kw), load_digits(8), tmp_path / name, progress=False, ckpt_every=0).fit()
    with pytest.raises(ValueError, match='p_uncond > 0'):                      # no unconditional model to guide with
        choose_guidance(tmp_path / 'plain' / 'ckpt.pt', progress=False)
    for bad in [(), (1.0, float('nan')), (-0.5,), (1.0, 1.0)]:
        with pytest.raises(ValueError, match='distinct finite weights'):
            choose_guidance(tmp_path / 'guided' / 'ckpt.pt', bad, progress=False)
    ck = tmp_path / 'guided' / 'ckpt.pt'
    before = ck.read_bytes()
    with RunLock(ck.parent), pytest.raises(CheckpointError):                  # a run training in that folder now
        choose_guidance(ck, (0.0, 1.0), n=20, batch_size=20, cache_dir=tmp_path / 'cache',
                        classifier_kw=dict(steps=20), progress=False)
    assert ck.read_bytes() == before and 'guidance_choice' not in json.loads((ck.parent / 'card.json').read_text())
