"""The README's table of the recorded workshop run quotes its card: if the run is re-recorded and the README is
not updated (or the other way round), this fails."""
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_readme_quotes_the_workshop_card():
    card = json.loads((ROOT / 'resources' / 'workshop' / 'card.json').read_text())
    readme = (ROOT / 'README.md').read_text()
    tr, m = card['training'], card['metrics']
    fd = m['frechet']
    smp = m['accuracy']['samples']
    quoted = [f"{tr['wall_time_s'] / 60:.1f} min", f"{tr['step']:,} steps of batch {card['preset']['batch_size']}",
              f"{tr['images_per_s']} images/s", f"{card['parameters'] / 1e6:.2f}M parameters",
              f"**{m['accuracy']['overall']:.1%}** (DDIM {smp['steps']} steps, guidance w = {smp['guidance']})",
              f"{fd['fd']:.2f} / {fd['floor']:.2f} = **{fd['fd'] / fd['floor']:.2f}×**",
              f"**{smp['sampling_time_s']:.0f} s** (DDIM {smp['steps']} with guidance"]
    missing = [q for q in quoted if q not in readme]
    assert not missing, f"README.md does not quote resources/workshop/card.json: missing {missing}"


def test_readme_quotes_the_bf16_sampling_check():
    r = json.loads((ROOT / 'resources' / 'workshop' / 'bf16_sampling.json').read_text())
    readme = (ROOT / 'README.md').read_text()
    quoted = [f"takes {r['bf16']['sampling_time_s']:.1f} s instead of\n{r['fp32']['sampling_time_s']:.1f} s",
              f"same accuracy ({r['bf16']['accuracy']:.1%})", f"Fréchet distance ({r['bf16']['fd']:.3f})"]
    missing = [q for q in quoted if q not in readme]
    assert not missing, f"README.md does not quote resources/workshop/bf16_sampling.json: missing {missing}"
