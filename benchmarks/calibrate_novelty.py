"""Where should `is_novel` draw its line? Similarity of small clusters to their nearest MAST mode, measured.

Usage:  python benchmarks/calibrate_novelty.py

Two groups of hand-written two-item clusters (written for trajfm, in its own words), embedded exactly as
`trajfm cluster` embeds items (title and description separately, averaged; specifics masked) and compared with
the MAST definitions as `trajfm.clustering.novelty` does:
- restatements of five MAST modes (their nearest mode should be that mode, and they should NOT be novel);
- five failure families MAST does not name (the bundled corpus's novel families; they SHOULD be novel, though
  some are special cases of a MAST mode, e.g. overstated completion of 3.2).
It prints the centroid similarity per group, from which NOVELTY_THRESHOLD in novelty.py was chosen.
"""

from __future__ import annotations

import numpy as np

from trajfm.clustering.embed import get_embedder
from trajfm.clustering.fit import Item, _embed_both
from trajfm.clustering.novelty import NOVELTY_THRESHOLD, compare_with_modes, mode_texts
from trajfm.clustering.text import mask_specifics
from trajfm.taxonomy import load_taxonomy

KNOWN = {
    "1.3": [
        (
            "Repeated Tool Call",
            "The agent called the same tool with identical arguments several times without learning anything new.",
        ),
        (
            "Redundant Steps",
            "The agent repeated the same action three times in a row though the result never changed.",
        ),
    ],
    "3.1": [
        (
            "Early Stop",
            "The agent ended the task before the forecast was produced and returned a partial answer.",
        ),
        (
            "Quit Before Finishing",
            "The run stopped after the first sub-task, leaving the remaining requests unanswered.",
        ),
    ],
    "2.2": [
        (
            "No Clarifying Question",
            "The request was ambiguous about which asset was meant, and the agent guessed instead of asking the user.",
        ),
        (
            "Assumed Missing Details",
            "The agent picked a date range on its own rather than asking the user which period they meant.",
        ),
    ],
    "3.2": [
        (
            "Unchecked Result",
            "The agent accepted the tool output without checking whether it answered the question.",
        ),
        (
            "Missing Verification",
            "No step verified that the work order was actually created before the agent reported it.",
        ),
    ],
    "1.5": [
        ("Did Not Stop", "The agent kept calling tools after the answer was already found."),
        (
            "Ignored Finish Condition",
            "The agent continued iterating although the task said to stop after one forecast.",
        ),
    ],
}
NOVEL = {
    "Invalid Action Formatting": [
        (
            "Invalid Action Formatting",
            "The action string did not follow the Tool Name / Tool Parameter format and the parser rejected it.",
        ),
        (
            "Malformed Tool Invocation",
            "The agent wrote the action input as free text instead of the required key=value form.",
        ),
    ],
    "Extraneous Output Artefacts": [
        (
            "Extraneous Output Artefacts",
            "The final answer contained leftover debug logs, raw JSON and file paths irrelevant to the user.",
        ),
        (
            "Cluttered Final Output",
            "The response included intermediate scratch files and stack traces the user never asked for.",
        ),
    ],
    "Hallucinated Asset or Sensor": [
        ("Hallucinated Sensor", "The agent referred to a sensor that does not exist on the asset."),
        ("Invented Asset Identifier", "The answer named chiller 17, which is not in the site's asset list."),
    ],
    "Ineffective Error Recovery": [
        (
            "Ineffective Error Recovery",
            "After the tool returned an error the agent retried the same failing call instead of changing approach.",
        ),
        (
            "Poor Recovery From Failure",
            "When the download failed the agent neither fixed the request nor tried an alternative.",
        ),
    ],
    "Overstatement of Task Completion": [
        (
            "Overstatement of Task Completion",
            "The agent claimed the analysis was complete although the tool calls had failed.",
        ),
        (
            "Claimed Success Without Result",
            "The final answer reported a finished forecast that was never produced.",
        ),
    ],
}


def main() -> None:
    tax = load_taxonomy("mast")
    emb = get_embedder("minilm")
    modes, _ = emb.encode(mode_texts(tax)), None

    def centroid(pairs: list[tuple[str, str]]) -> np.ndarray:
        vecs, _ = _embed_both(
            [Item(str(i), mask_specifics(t), mask_specifics(d)) for i, (t, d) in enumerate(pairs)], emb, None
        )
        c = vecs.sum(axis=0)
        return c / np.linalg.norm(c)

    for label, group in (("restatements of MAST modes", KNOWN), ("families MAST does not name", NOVEL)):
        print(label)
        sims = []
        for key, pairs in group.items():
            nearest, sim, novel = compare_with_modes(
                centroid(pairs)[None, :], modes, tax.ids, NOVELTY_THRESHOLD
            )[0]
            sims.append(sim)
            print(f"  {key:<34} nearest {nearest:<4} similarity {sim:.3f}  is_novel={novel}")
        print(f"  range {min(sims):.3f} .. {max(sims):.3f}")
    print(f"NOVELTY_THRESHOLD = {NOVELTY_THRESHOLD}")


if __name__ == "__main__":
    main()
