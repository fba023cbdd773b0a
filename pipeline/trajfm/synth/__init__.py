"""The bundled synthetic corpus: 881 AssetOpsBench-style MetaAgent runs with known, labelled failures.

Public API:
- `generate_corpus(out, seed, limit=None, overwrite=False, compress=True) -> CorpusSummary`: write the runs in the
  MetaAgent layout `<out>/<run-timestamp>/<vendor>/<model>/<4-digit id>` plus the ground-truth sidecar
  `<out>/labels.jsonl`. With `compress` (default) each file is `<4-digit id>.gz`, a byte-deterministic gzip of
  exactly the plain file's bytes; `compress=False` writes the plain extensionless files.
  Same seed -> byte-identical files; another seed -> other wording, values and behaviour draws.
- `trace_file(root, trace_path) -> Path`: the file on disk for a sidecar `trace_path` (plain or `.gz`).
- `corpus_stats(labels_path) -> str`: behaviour rates per model and single vs multi-agent, from the sidecar.
- `DEFAULT_SEED`: the seed of the committed corpus in `traces/assetops`.

Modules: `domain` (sites, assets, sensors, failure modes), `scenarios` (utterances and their plans), `phrasing`
(sentence banks), `planters` (behaviours and where they show), `rates` (behaviour table and propensities),
`episode` (the step model), `prompts`, `writer` (MetaAgent JSON and the sidecar), `stats`.
"""

from trajfm.synth.stats import corpus_stats
from trajfm.synth.writer import CorpusSummary, SynthError, generate_corpus, trace_file

DEFAULT_SEED = 20250729

__all__ = ["DEFAULT_SEED", "CorpusSummary", "SynthError", "corpus_stats", "generate_corpus", "trace_file"]
