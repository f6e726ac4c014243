"""Print the machine a test run or a recorded run happens on: the CPU (model, the flags that decide bf16 speed,
cores), the torch build and its threads. `.ci/run` prints it first, so a red run elsewhere can be read."""
import json, platform, sys
import torch
from ddpm_nb.precision import cpu_info

info = cpu_info()
print(f"machine: {info['model']}; flags {' '.join(info['flags']) or '(none of interest)'}; "
      f"native bf16 {info['native_bf16']}; {info['cores']} cores ({info['usable_cores']} usable), "
      f"{info['threads']} torch threads")
print(f"torch {torch.__version__} (CUDA build {torch.version.cuda or 'none'}, GPU {'yes' if torch.cuda.is_available() else 'no'}), "
      f"python {platform.python_version()}, {platform.platform()}")
