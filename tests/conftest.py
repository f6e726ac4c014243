import torch, pytest

@pytest.fixture(autouse=True)
def _seed():
    "Every test starts from the same global RNG state; tests that need randomness also pass generators."
    torch.manual_seed(0)

# Tests use tiny tensors: one thread is as fast as two there, and far faster when another process shares the
# two cores (torch's worker threads otherwise spin-wait on each other: 10x slower measured here).
torch.set_num_threads(1)
