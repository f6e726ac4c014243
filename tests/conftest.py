import torch, pytest

@pytest.fixture(autouse=True)
def _seed():
    "Every test starts from the same global RNG state; tests that need randomness also pass generators."
    torch.manual_seed(0)
