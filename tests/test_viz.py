"""Labelled pictures, from the installed package in a clean process: grids that name their rows and state their
settings, GIFs with a title over each half and a moving step counter, and the bare pictures still available."""
import contextlib, io
from pathlib import Path
import numpy as np
import pytest, torch
from PIL import Image
from ddpm_nb.cli import main
from ddpm_nb.viz import (FrameText, grid_picture, image_grid, save_gif, save_grid, sequence_frames, step_counter,
                         text_band)

TINY_ARGS = ['image_size=8', 'base_channels=8', 'T=20', 'batch_size=16', 'warmup=2', 'precision=fp32']

def cli(*argv):
    o, e = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(o), contextlib.redirect_stderr(e):
        code = main([str(a) for a in argv])
    return code, o.getvalue(), e.getvalue()

def ink_rows(strip: np.ndarray) -> np.ndarray:
    "Which pixel rows of a white strip hold dark ink."
    return (strip.reshape(len(strip), -1) < 128).any(1)

@pytest.fixture(scope='module')
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp('viz') / 'run'
    code, _, err = cli('train', '--preset', 'digits', '--steps', 2, '--out', out, '--no-progress', *TINY_ARGS)
    assert code == 0, err
    return out

def test_bare_grid_is_the_old_picture(tmp_path):
    "No labels: exactly the grid enlarged by whole pixels, as save_grid always wrote it (PIL nearest resize)."
    x = torch.rand(6, 3, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    g = image_grid(x, 3)
    old = np.asarray(Image.fromarray(g).resize((g.shape[1] * 2, g.shape[0] * 2), Image.NEAREST))
    save_grid(x, tmp_path / 'a.png', nrow=3, scale=2)
    assert np.array_equal(np.asarray(Image.open(tmp_path / 'a.png')), old)
    assert grid_picture(x, 3).shape == ((2 * 9 + 1) * 5, (3 * 9 + 1) * 5, 3)     # 8 px images: 5x, 40 px an image

def test_row_labels_sit_beside_their_rows():
    x = torch.zeros(12, 1, 16, 16)
    bare = grid_picture(x, 4, scale=3)
    lab = grid_picture(x, 4, scale=3, row_labels=['airplane', 'automobile', 'truck'])
    strip = lab.shape[1] - bare.shape[1]
    assert strip > 40 and np.array_equal(lab[:, strip:], bare)
    ink = ink_rows(lab[:, :strip])
    row = 3 * 17                                                  # a row of 16 px images and its padding line, 3x
    assert all(ink[3 + r * row + 24 - 3: 3 + r * row + 24 + 4].any() for r in range(3))
    assert not any(ink[r * row: r * row + 3].any() for r in range(4))
    with pytest.raises(ValueError, match='2 row labels for a grid of 3 rows'): grid_picture(x, 4, row_labels=['a', 'b'])

def test_caption_is_drawn_below():
    x = torch.zeros(4, 1, 8, 8)
    bare, cap = grid_picture(x, 4), grid_picture(x, 4, caption='DDIM 20 steps, guidance 1, EMA weights')
    assert np.array_equal(cap[:len(bare)], bare)
    assert np.array_equal(cap[len(bare):], text_band('DDIM 20 steps, guidance 1, EMA weights', bare.shape[1], 12,
                                                     align='left'))

def test_frames_bare_by_default_and_labelled_on_request():
    states = [dict(t=t, x=torch.full((2, 1, 8, 8), 1 - t / 5), x0_hat=torch.zeros(2, 1, 8, 8)) for t in range(4, -1, -1)]
    bare = sequence_frames(states, nrow=2, n_frames=5)
    assert bare[0].shape == (10, 2 * 19 + 4, 1)                 # as before: the two grids and the grey gap
    lab = sequence_frames(states, nrow=2, n_frames=5, text=FrameText(), scale=4)
    assert len({f.shape for f in lab}) == 1
    top = next(r for r in range(len(lab[0])) if np.array_equal(lab[0][r:r + 40], bare[0].repeat(4, 0).repeat(4, 1)))
    assert top > 12 and (lab[0][:top, :4 * 19] < 128).any() and (lab[0][:top, 4 * 23:] < 128).any()
    assert np.array_equal(lab[0][:top], lab[-1][:top])           # the titles stay
    assert not np.array_equal(lab[0][top + 40:], lab[-1][top + 40:])   # the counter moves
    assert [step_counter(s, i, 5) for i, s in enumerate(states)][::4] == ['t = 4, step 1/5', 't = 0, step 5/5']
    assert FrameText().titles[1].startswith('x\u0302\u2080')     # x-hat-0, the network's guess

def test_cli_sample_labels_rows_and_states_its_settings(run, tmp_path):
    ck = run / 'ckpt.pt'
    assert cli('sample', '--ckpt', ck, '--steps', 3, '--out', tmp_path / 'l.png', '--no-progress')[0] == 0
    assert cli('sample', '--ckpt', ck, '--steps', 3, '--no-labels', '--out', tmp_path / 'b.png', '--no-progress')[0] == 0
    lab, bare = np.asarray(Image.open(tmp_path / 'l.png')), np.asarray(Image.open(tmp_path / 'b.png'))
    assert bare.shape == ((10 * 9 + 1) * 5, (8 * 9 + 1) * 5)     # 8 per class, one row per class, 40 px an image
    strip = lab.shape[1] - bare.shape[1]
    assert strip > 10 and np.array_equal(lab[:len(bare), strip:], bare)
    ink = ink_rows(lab[:len(bare), :strip])
    assert all(ink[5 + 45 * r + 20 - 3: 5 + 45 * r + 20 + 4].any() for r in range(10))   # a name beside each row
    caption = f"DDIM 3 steps, guidance 0, EMA weights, seed 0; run 'digits', 2 training steps: {ck}"
    assert np.array_equal(lab[len(bare):], text_band(caption, lab.shape[1], 12, align='left')[..., 0])

def test_cli_gif_titles_and_counter(run, tmp_path):
    ck = run / 'ckpt.pt'
    args = ['--ckpt', ck, '--classes', '0,1', '--sampler', 'ddim', '--steps', 4, '--frames', 4, '--no-progress']
    assert cli('gif', *args, '--out', tmp_path / 'l.gif')[0] == 0
    assert cli('gif', *args, '--no-labels', '--out', tmp_path / 'b.gif')[0] == 0
    lab, bare = Image.open(tmp_path / 'l.gif'), Image.open(tmp_path / 'b.gif')
    assert bare.size == (12 * (2 * 19 + 4), 12 * 10) and lab.size[0] == bare.size[0] and lab.n_frames == 4
    frames = []
    for k in range(4):
        lab.seek(k)
        frames.append(np.asarray(lab.convert('L')))
    bare.seek(0)
    b0 = np.asarray(bare.convert('L'))
    top = next(r for r in range(len(frames[0]) - len(b0) + 1) if np.array_equal(frames[0][r:r + len(b0)], b0))
    for k, says in [(0, 't = 14, step 1/4'), (3, 't = 0, step 4/4')]:   # DDIM 4 of T = 20: 0, 6, 13, 19
        foot = text_band(f"{says}\nDDIM 4 steps, guidance 0, EMA weights, seed 0; run 'digits', 2 training steps: "
                         f"{ck}; images: 0, 1", b0.shape[1], 12, align='left')[..., 0]
        assert np.array_equal(frames[k][top + len(b0):top + len(b0) + len(foot)], foot), says
    assert np.array_equal(frames[0][:top], frames[3][:top]) and (frames[0][:top] < 128).any()

def test_gif_frames_written_at_their_size(tmp_path):
    states = [dict(x=torch.zeros(1, 1, 8, 8), x0_hat=torch.zeros(1, 1, 8, 8)) for _ in range(3)]
    frames = sequence_frames(states, 1, text=FrameText(caption='real data, not a model sample'), scale=4)
    im = Image.open(save_gif(frames, tmp_path / 'a.gif', scale=1))
    assert im.size == (frames[0].shape[1], frames[0].shape[0]) and im.n_frames == 3
