"The benchmark's own contenders (bench/common.py): our two networks at every size have matched parameters."
import sys
from pathlib import Path
import pytest, torch

sys.path.insert(0, str(Path(__file__).parents[1] / 'bench'))
import common  # noqa: E402


@pytest.mark.parametrize('size', list(common.SIZES))
def test_patched_contender_matches_parameters_and_costs_fewer_flops(size):
    s = common.SIZES[size]
    (a, call_a), (b, call_b) = common.build('ddpm_nb', s), common.build('ddpm_nb-p2', s)
    assert b.patch_size == 2 and abs(common.param_count(b) / common.param_count(a) - 1) <= 0.10   # the issue's +-10%
    fa, fb = common.flops_per_image(call_a, s), common.flops_per_image(call_b, s)
    assert fa > 2 * fb > 0
    x = torch.randn(2, s.channels, s.image_size, s.image_size)
    assert call_b(x, torch.tensor([0, 999])).shape == x.shape


def test_unknown_contender():
    with pytest.raises(ValueError, match='expected one of ddpm_nb, ddpm_nb-p2'): common.build('ddpm', common.SIZES['28x28x1'])
