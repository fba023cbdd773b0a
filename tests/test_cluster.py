"""Stage 2 (`trajfm cluster`): determinism, outliers, names, novelty, baseline, IBM's method, CLI, cache.

Most tests use the fake embedder (hashed bag of words) and no reducer: the real model is not what they test.
`tests/test_cluster_slow.py` runs the real all-MiniLM-L6-v2 offline and UMAP.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import adjusted_rand_score
from typer.testing import CliRunner

from trajfm.cli import app
from trajfm.clustering.embed import EmbeddingCache, FakeEmbedder, embed_texts
from trajfm.clustering.fit import ClusterConfig, Item, cluster_items
from trajfm.clustering.naming import LlmNamer, NamerError, ctfidf_keywords, unique_names
from trajfm.clustering.reduce import ReducerError, UmapReducer, get_reducer
from trajfm.clustering.stability import weighted_ari
from trajfm.clustering.stage import ClusterOptions, run_cluster
from trajfm.errors import UsageError
from trajfm.taxonomy import load_taxonomy

# Four families with their own vocabulary, written for these tests, plus filler shared by all of them.
FAMILIES = {
    "retry": (
        "Retry Loop After Tool Error",
        ["retried", "same", "failing", "tool", "call", "error", "again", "loop"],
    ),
    "overclaim": (
        "Overstated Task Completion",
        ["claimed", "finished", "success", "completed", "despite", "missing", "result", "overstated"],
    ),
    "format": (
        "Malformed Action Syntax",
        ["malformed", "action", "syntax", "json", "bracket", "parser", "rejected", "format"],
    ),
    "sensor": (
        "Invented Sensor Name",
        ["invented", "sensor", "asset", "name", "nonexistent", "hallucinated", "chiller", "identifier"],
    ),
}
FILLER = ["the", "agent", "during", "trace", "step", "it", "and", "then"]


def make_items(per_family: int = 15, seed: int = 1, dup: int = 0) -> tuple[list[Item], dict[str, str]]:
    """Items whose descriptions mix 6 family words with 3 filler words; `dup` extra exact copies per family."""
    rng = random.Random(seed)
    items, truth = [], {}
    n = 0
    for fam, (title, words) in FAMILIES.items():
        texts = []
        for _ in range(per_family):
            desc = " ".join(rng.sample(words, 6) + rng.sample(FILLER, 3))
            texts.append(desc)
        texts += texts[:dup]
        for desc in texts:
            nid = f"n{n:04d}"
            items.append(Item(nid, title, desc))
            truth[nid] = fam
            n += 1
    return items, truth


def run(items: list[Item], **config: object):
    cfg = ClusterConfig(**{"reducer": "none", "stability_rounds": 8, **config})  # type: ignore[arg-type]
    return cluster_items(items, embedder=FakeEmbedder(), config=cfg, taxonomy=load_taxonomy("mast"))


def labels_by_id(outcome) -> dict[str, int]:
    return dict(zip(outcome.assignments["novel_id"], outcome.assignments["cluster_id"], strict=True))


# --- determinism -------------------------------------------------------------------------------------------------
def test_permuting_the_input_changes_no_assignment_or_cluster() -> None:
    items, _ = make_items()
    base = run(items)
    for s in range(3):
        shuffled = items[:]
        random.Random(s).shuffle(shuffled)
        other = run(shuffled)
        assert labels_by_id(other) == labels_by_id(base)
        assert other.clusters.equals(base.clusters)
        assert other.assignments.equals(base.assignments)


def test_two_runs_with_the_same_seed_are_identical() -> None:
    items, _ = make_items()
    a, b = run(items, seed=7), run(items, seed=7)
    assert a.clusters.equals(b.clusters) and a.assignments.equals(b.assignments)
    strip = lambda m: {k: v for k, v in m.items() if k != "timings"}  # noqa: E731
    assert strip(a.manifest) == strip(b.manifest)
    assert a.manifest["seed"] == 7


# --- recovering families, outliers, duplicates -------------------------------------------------------------------
def test_separate_families_come_out_as_separate_clusters() -> None:
    items, truth = make_items()
    out = run(items)
    got = labels_by_id(out)
    ids = sorted(truth)
    assert adjusted_rand_score([truth[i] for i in ids], [got[i] for i in ids]) > 0.9
    assert out.manifest["counts"]["clusters"] == 4
    assert out.manifest["outliers"]["share"] < 0.2
    # Canonical ids: 0..k-1 ordered by size descending.
    real = out.clusters.filter(pl.col("cluster_id") >= 0)
    assert real["cluster_id"].to_list() == list(range(real.height))
    assert real["size"].to_list() == sorted(real["size"].to_list(), reverse=True)


def test_duplicates_are_fitted_once_and_weighted_back() -> None:
    items, truth = make_items(dup=5)
    out = run(items)
    counts = out.manifest["counts"]
    assert counts["items"] == len(items) == 4 * 20
    assert counts["distinct_texts"] == 4 * 15
    assert out.clusters["size"].sum() == len(items)
    assert abs(out.clusters["share"].sum() - 1.0) < 1e-9
    # every copy of a text lands where the text does
    by_text: dict[str, set[int]] = {}
    got = labels_by_id(out)
    for it in items:
        by_text.setdefault(it.description, set()).add(got[it.novel_id])
    assert all(len(v) == 1 for v in by_text.values())


def test_outliers_are_reported_and_assign_outliers_marks_them() -> None:
    items, _ = make_items()
    # Stray items that share a little vocabulary with the families but sit between them.
    strays = [
        Item("z1", "Retried Sensor", "retried sensor json claimed"),
        Item("z2", "Chiller Success", "loop chiller bracket success"),
        Item("z3", "Parser Asset", "tool asset parser despite"),
    ]
    out = run(items + strays)
    n_out = out.manifest["outliers"]["count"]
    assert n_out >= 1, "stray items mixing all families should not all be absorbed"
    out_rows = out.clusters.filter(pl.col("cluster_id") == -1)
    assert out_rows.height == 1 and out_rows["size"][0] == n_out
    assert out.manifest["outliers"]["share"] == pytest.approx(n_out / (len(items) + 3), abs=1e-4)
    assert out.assignments.filter(pl.col("cluster_id") == -1).height == n_out
    assert not out.assignments["assigned"].any()

    forced = run(items + strays, assign_outliers=True)
    fo = forced.manifest["outliers"]
    assert fo["count"] == n_out  # the share before assignment is still reported
    attached = forced.assignments.filter(pl.col("assigned"))
    assert attached.height == fo["assigned"]
    assert (attached["cluster_id"] >= 0).all()
    assert fo["count_after_assignment"] == n_out - fo["assigned"]
    # Non-outliers are untouched by assignment.
    before, after = labels_by_id(out), labels_by_id(forced)
    assert all(after[k] == v for k, v in before.items() if v != -1)


def test_empty_texts_are_outliers_not_errors() -> None:
    items, _ = make_items()
    items.append(Item("e1", "", ""))
    out = run(items)
    row = out.assignments.filter(pl.col("novel_id") == "e1")
    assert row["cluster_id"][0] == -1
    assert out.manifest["counts"]["empty_texts"] == 1
    assert out.manifest["outliers"]["count"] >= 1


def test_tiny_inputs_give_one_cluster_per_distinct_text() -> None:
    out = run([Item("a", "A", "alpha beta"), Item("b", "A", "alpha beta"), Item("c", "B", "gamma delta")])
    assert out.clusters.height == 2
    assert sorted(out.clusters["size"].to_list()) == [1, 2]
    assert "rule" in out.manifest["parameters"]


def test_repeated_novel_ids_are_refused() -> None:
    with pytest.raises(UsageError, match="novel_id"):
        run([Item("a", "A", "x"), Item("a", "B", "y")])


# --- names ---------------------------------------------------------------------------------------------------------
def test_keywords_are_distinctive_and_names_unique() -> None:
    items, truth = make_items()
    out = run(items)
    names = out.clusters["name"].to_list()
    assert len(set(names)) == len(names)
    got = labels_by_id(out)
    for row in out.clusters.filter(pl.col("cluster_id") >= 0).iter_rows(named=True):
        fams = {truth[i] for i, c in got.items() if c == row["cluster_id"]}
        assert len(fams) == 1
        title, words = FAMILIES[fams.pop()]
        fam_words = set(words) | set(title.lower().split())
        # keywords are words (or pairs) of this family's own title and vocabulary, not the shared filler
        assert row["keywords"] and all(set(k.split()) <= fam_words for k in row["keywords"][:3])
        assert row["name"] in {t for t, _ in FAMILIES.values()}
        assert len(row["representatives"]) == 3


def test_unique_names_resolves_collisions() -> None:
    names = unique_names(
        [(["Error Loop"], ["retry"]), (["Error Loop"], ["tool"]), (["Error Loop"], ["loop"])]
    )
    assert names[0] == "Error Loop" and names[1] == "Error Loop (tool)"
    assert len(set(names)) == 3


def test_ctfidf_prefers_class_specific_terms() -> None:
    texts = ["apple banana shared", "apple cherry shared", "zebra yak shared", "zebra lion shared"]
    kw = ctfidf_keywords(texts, np.ones(4), np.array([0, 0, 1, 1]), top_n=1)
    assert kw == {0: ["apple"], 1: ["zebra"]}


# --- novelty and baseline ------------------------------------------------------------------------------------------
def test_a_cluster_restating_a_mast_mode_is_not_novel() -> None:
    tax = load_taxonomy("mast")
    rep = tax.mode("1.3")
    items, _ = make_items()
    # A family whose texts are the 1.3 definition with one word dropped each time.
    words = f"{rep.name}: {rep.definition}".split()
    for i in range(12):
        items.append(Item(f"m{i:02d}", rep.name, " ".join(words[: i + 3] + words[i + 4 :])))
    out = run(items, text="description")
    got = labels_by_id(out)
    c = {got[f"m{i:02d}"] for i in range(12)}
    assert len(c) == 1
    cid = c.pop()
    row = out.clusters.filter(pl.col("cluster_id") == cid).row(0, named=True)
    assert row["nearest_mode"] == "1.3" and not row["is_novel"]
    others = out.clusters.filter((pl.col("cluster_id") >= 0) & (pl.col("cluster_id") != cid))
    assert others.height == 4 and others["is_novel"].all()
    assert out.manifest["counts"]["novel_clusters"] == int(out.clusters["is_novel"].sum())


def _write_csv(path: Path, items: list[Item]) -> Path:
    pl.DataFrame(
        {"title": [i.title for i in items], "description": [i.description for i in items]}
    ).write_csv(path)
    return path


def test_baseline_flags_only_families_it_did_not_have(tmp_path: Path) -> None:
    items, truth = make_items()
    old = [i for i in items if truth[i.novel_id] in ("retry", "overclaim", "format")]
    new = [i for i in items if truth[i.novel_id] in ("retry", "overclaim", "sensor")]
    opts = {"embedder": "fake", "reducer": "none"}
    run_cluster(tmp_path / "old", ClusterOptions(from_csv=_write_csv(tmp_path / "old.csv", old), **opts))
    out = run_cluster(
        tmp_path / "new",
        ClusterOptions(from_csv=_write_csv(tmp_path / "new.csv", new), baseline=tmp_path / "old", **opts),
    )
    flags = dict(zip(out.clusters["name"], out.clusters["new_since_baseline"], strict=True))
    assert flags["Invented Sensor Name"] is True
    assert flags["Retry Loop After Tool Error"] is False and flags["Overstated Task Completion"] is False
    assert out.manifest["baseline"]["clusters"] == 3
    without = run_cluster(tmp_path / "new", ClusterOptions(from_csv=tmp_path / "new.csv", **opts))
    assert without.clusters["new_since_baseline"].is_null().all()


# --- IBM's method ----------------------------------------------------------------------------------------------------
def test_kmeans_silhouette_embeds_titles_only_and_names_by_central_title() -> None:
    items, truth = make_items(per_family=6)
    # Titles carry the family; descriptions are scrambled across families, so only titles can separate them.
    rng = random.Random(3)
    descs = [i.description for i in items]
    rng.shuffle(descs)
    scrambled = [Item(i.novel_id, i.title, d) for i, d in zip(items, descs, strict=True)]
    out = run(scrambled, method="kmeans-silhouette")
    assert out.manifest["text"] == "title" and out.manifest["method"] == "kmeans-silhouette"
    assert 2 <= out.manifest["parameters"]["k"] <= 7
    assert [r["k"] for r in out.manifest["scan"]] == [2, 3]  # only 4 distinct titles: k < 4
    assert out.manifest["outliers"]["count"] == 0
    assert set(out.clusters["name"]) <= {t for t, _ in FAMILIES.values()}


# --- parts ---------------------------------------------------------------------------------------------------------
def test_weighted_ari_equals_ari_of_expanded_items() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        a, b = rng.integers(-1, 3, 12), rng.integers(-1, 4, 12)
        w = rng.integers(1, 5, 12)
        expected = adjusted_rand_score(np.repeat(a, w), np.repeat(b, w))
        assert weighted_ari(a, b, w.astype(float)) == pytest.approx(expected)


def test_fake_embedder_is_deterministic_normalised_and_word_sensitive() -> None:
    e = FakeEmbedder()
    v = e.encode(["retry the failing tool", "retry the failing tool call", "sensor name invented"])
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0)
    assert np.array_equal(
        v,
        FakeEmbedder().encode(
            ["retry the failing tool", "retry the failing tool call", "sensor name invented"]
        ),
    )
    assert v[0] @ v[1] > v[0] @ v[2]


def test_embedding_cache_is_keyed_by_model_and_text(tmp_path: Path) -> None:
    e = FakeEmbedder()
    cache = EmbeddingCache(tmp_path, e.model_id)
    _, stats = embed_texts(["a b", "c d"], e, cache)
    assert stats == {"cached": 0, "computed": 2}
    reopened = EmbeddingCache(tmp_path, e.model_id)
    vecs, stats = embed_texts(["c d", "e f"], e, reopened)
    assert stats == {"cached": 1, "computed": 1}
    assert np.allclose(vecs, e.encode(["c d", "e f"]))
    other = EmbeddingCache(tmp_path, FakeEmbedder(dim=32).model_id)
    assert other.get(next(iter(reopened._vectors))) is None


def test_no_silent_reducer_fallback() -> None:
    with pytest.raises(ReducerError):
        get_reducer("pca")
    with pytest.raises(ReducerError, match="at least"):
        UmapReducer().fit_transform(np.eye(5, dtype=np.float32), seed=0)


# --- run folder and CLI ---------------------------------------------------------------------------------------------
def test_cli_from_csv_end_to_end(tmp_path: Path) -> None:
    items, _ = make_items()
    csv = _write_csv(tmp_path / "modes.csv", items)
    runner = CliRunner()
    res = runner.invoke(
        app,
        ["cluster", str(tmp_path / "run"), "--from-csv", str(csv), "--embedder", "fake", "--reducer", "none"],
    )
    assert res.exit_code == 0, res.output
    assert "4 clusters" in res.output and "outliers:" in res.output
    run_dir = tmp_path / "run"
    clusters = pl.read_parquet(run_dir / "clusters.parquet")
    assign = pl.read_parquet(run_dir / "novel_assignments.parquet")
    modes = pl.read_parquet(run_dir / "novel_modes.parquet")
    assert modes.height == assign.height == len(items)
    assert set(assign["novel_id"]) == set(modes["novel_id"])
    section = json.loads((run_dir / "manifest.json").read_text())["stages"]["cluster"]
    assert section["inputs"]["origin"] == "csv" and len(section["inputs"]["csv_sha256"]) == 64
    assert (
        section["method"] == "hdbscan" and section["scan"] and section["parameters"]["min_cluster_size"] >= 2
    )
    assert section["counts"]["clusters"] == clusters.filter(pl.col("cluster_id") >= 0).height
    # a re-run on the same folder hits the embedding cache and gives the same tables
    res2 = runner.invoke(
        app, ["cluster", str(run_dir), "--from-csv", str(csv), "--embedder", "fake", "--reducer", "none"]
    )
    assert res2.exit_code == 0, res2.output
    section2 = json.loads((run_dir / "manifest.json").read_text())["stages"]["cluster"]
    assert section2["embedder"]["computed"] == 0
    # "both" embeds titles and descriptions separately: 4 distinct titles + 60 distinct descriptions
    assert section2["embedder"]["cached"] == section["embedder"]["computed"] == 64
    assert pl.read_parquet(run_dir / "clusters.parquet").equals(clusters)


def test_cli_errors_name_the_problem(tmp_path: Path) -> None:
    runner = CliRunner()
    bad = tmp_path / "bad.csv"
    bad.write_text("title,summary\nA,b\n")
    res = runner.invoke(app, ["cluster", str(tmp_path / "r"), "--from-csv", str(bad), "--embedder", "fake"])
    assert res.exit_code == 2 and "description" in res.output
    res = runner.invoke(app, ["cluster", str(tmp_path / "missing")])
    assert res.exit_code != 0 and "does not exist" in res.output
    res = runner.invoke(
        app, ["cluster", str(tmp_path / "r2"), "--from-csv", str(bad), "--method", "spectral"]
    )
    assert res.exit_code != 0


def test_from_csv_never_overwrites_extract_output(tmp_path: Path) -> None:
    from trajfm.runfolder import RunFolder
    from trajfm.schemas import empty

    run = RunFolder.create(tmp_path / "run")
    run.write_table("novel_modes", empty("novel_modes"))
    items, _ = make_items(per_family=3)
    with pytest.raises(UsageError, match="not made from a CSV"):
        run_cluster(run.root, ClusterOptions(from_csv=_write_csv(tmp_path / "m.csv", items), embedder="fake"))


# --- LLM namer -------------------------------------------------------------------------------------------------------
def test_llm_namer_needs_an_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    for env in ("TRAJFM_BASE_URL", "OPENAI_BASE_URL"):
        monkeypatch.delenv(env, raising=False)
    with pytest.raises(NamerError, match="--base-url"):
        LlmNamer(None, "m")


def test_llm_namer_names_through_the_local_endpoint() -> None:
    endpoint = pytest.importorskip("trajfm.testing.endpoint")

    def reply(body: dict) -> str:
        user = body["messages"][-1]["content"]
        first_kw = user.split("Keywords: ")[1].split(",")[0].split("\n")[0]
        return json.dumps({"name": f"Family of {first_kw}", "definition": f"Failures about {first_kw}."})

    items, truth = make_items()
    with endpoint.LocalEndpoint(endpoint.EndpointConfig(reply_fn=reply)) as ep:
        namer = LlmNamer(ep.url, endpoint.DEFAULT_MODEL)
        out = cluster_items(
            items,
            embedder=FakeEmbedder(),
            config=ClusterConfig(reducer="none", stability_rounds=4),
            taxonomy=load_taxonomy("mast"),
            namer=namer,
        )
        assert len([r for r in ep.requests if r.path.endswith("/chat/completions")]) == 4
    real = out.clusters.filter(pl.col("cluster_id") >= 0)
    assert all(n.startswith("Family of ") for n in real["name"])
    assert all(d.startswith("Failures about ") for d in real["definition"])
    assert real["name"].n_unique() == real.height
    assert out.manifest["namer"]["namer"] == "llm"

    faulty = endpoint.LocalEndpoint(endpoint.EndpointConfig(script=[endpoint.Fault("malformed")] * 10))
    with faulty as ep, pytest.raises(NamerError, match="JSON|failed"):
        cluster_items(
            items,
            embedder=FakeEmbedder(),
            config=ClusterConfig(reducer="none", stability_rounds=2),
            taxonomy=load_taxonomy("mast"),
            namer=LlmNamer(ep.url, endpoint.DEFAULT_MODEL),
        )


# --- specifics masking and repeated texts ---------------------------------------------------------------------------
def test_mask_specifics_removes_instance_details_only() -> None:
    from trajfm.clustering.text import mask_specifics

    a = mask_specifics(
        'IoTAgent failed with "Error: timeout after 120 s" reading /tmp/x/data_7.json for mp_1'
    )
    b = mask_specifics(
        'TSFMAgent failed with "Error encountered: bad file" reading /data/y.csv for chiller_6'
    )
    assert a == b == "<name> failed with <quote> reading <path> for <name>"
    plain = "The agent retried the same failing call without changing its input."
    assert mask_specifics(plain) == plain
    assert mask_specifics(a) == a  # idempotent


def test_masking_merges_families_split_by_tool_names() -> None:
    tools = ["IoTAgent", "TSFMAgent", "FMSRAgent", "WOAgent"]
    items = []
    for i in range(24):
        t = tools[i % 4]
        items.append(
            Item(
                f"r{i:02d}",
                f"Retry Loop ({t})",
                f'{t} failed with "err {i}" and the call was repeated {i} times',
            )
        )
        items.append(
            Item(f"f{i:02d}", f"Bad Syntax ({t})", f"The action for {t} had malformed brackets at step {i}")
        )
    masked = run(items)
    unmasked = run(items, mask_specifics=False)
    got = labels_by_id(masked)
    assert len({got[f"r{i:02d}"] for i in range(24)}) == 1 and len({got[f"f{i:02d}"] for i in range(24)}) == 1
    assert masked.manifest["mask_specifics"] is True and unmasked.manifest["mask_specifics"] is False
    assert masked.manifest["counts"]["distinct_texts"] < unmasked.manifest["counts"]["distinct_texts"]


def test_a_text_repeated_as_often_as_a_cluster_is_a_cluster() -> None:
    from trajfm.clustering.clusterers import promote_heavy_outliers

    labels = np.array([0, 0, 1, 1, -1, -1])
    weights = np.array([3.0, 3.0, 2.0, 2.0, 4.0, 1.0])
    promoted, n = promote_heavy_outliers(labels, weights)
    assert n == 1 and promoted.tolist() == [0, 0, 1, 1, 2, -1]
    # no cluster at all: a text counts as a family from min_cluster_size items
    none, n = promote_heavy_outliers(np.array([-1, -1, -1]), np.array([5.0, 1.0, 3.0]), 2)
    assert n == 2 and none.tolist() == [0, -1, 1]
    # end to end: 30 copies of one unusual text next to three families
    items, _ = make_items()
    items += [
        Item(f"c{i:02d}", "Leftover Files", "scratch files left in the answer folder") for i in range(30)
    ]
    out = run(items)
    got = labels_by_id(out)
    c = {got[f"c{i:02d}"] for i in range(30)}
    assert len(c) == 1 and c.pop() >= 0
    assert out.manifest["counts"]["clusters"] == 5


def test_names_drop_one_members_instance_details() -> None:
    from trajfm.clustering.text import name_from_title

    assert name_from_title("Ineffective Error Recovery (IoTAgent)") == "Ineffective Error Recovery"
    assert (
        name_from_title("Invalid Action Formatting (call reader with /tmp/a/b.json)")
        == "Invalid Action Formatting"
    )
    assert name_from_title("Retry (see docs)") == "Retry (see docs)"
    tools = ["IoTAgent", "TSFMAgent", "WOAgent"]
    items = [
        Item(f"i{i}", f"Retry Loop ({tools[i % 3]})", f"{tools[i % 3]} failed and was called again {i}")
        for i in range(12)
    ]
    items += [Item(f"j{i}", "Bad Syntax", f"malformed brackets in the action number {i}") for i in range(12)]
    out = run(items)
    assert set(out.clusters["name"]) == {"Retry Loop", "Bad Syntax"}
    assert any(
        "(" in r for reps in out.clusters["representatives"] for r in reps
    )  # representatives keep originals


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=200))
def test_mask_specifics_is_total_and_idempotent(text: str) -> None:
    from trajfm.clustering.text import mask_specifics, name_from_title

    once = mask_specifics(text)
    assert mask_specifics(once) == once
    assert isinstance(name_from_title(text), str)


def test_empty_input_writes_empty_tables(tmp_path: Path) -> None:
    csv = tmp_path / "empty.csv"
    csv.write_text("title,description\n")
    out = run_cluster(tmp_path / "run", ClusterOptions(from_csv=csv, embedder="fake"))
    assert out.clusters.height == 0 and out.assignments.height == 0
    assert out.manifest["counts"]["items"] == 0 and out.manifest["outliers"]["share"] == 0.0
    assert pl.read_parquet(tmp_path / "run" / "clusters.parquet").height == 0


# --- scale: a fitted sample, the rest labelled by nearest fitted neighbours --------------------------------------
def test_fitted_sample_labels_the_rest_by_neighbours_order_free() -> None:
    items, truth = make_items(per_family=40)  # 160 distinct texts; 60 are fitted, 100 labelled by neighbours
    out = run(items, fit_sample=60)
    fit = out.manifest["fit"]
    assert fit["fitted_texts"] == 60 and fit["labelled_by_neighbours"] == 100
    assert out.manifest["counts"]["fitted_texts"] == 60
    got = labels_by_id(out)
    ids = sorted(truth)
    assert adjusted_rand_score([truth[i] for i in ids], [got[i] for i in ids]) > 0.9
    # The same families as fitting every text, and the same output whatever the input order.
    full = labels_by_id(run(items, fit_sample=0))
    assert adjusted_rand_score([full[i] for i in ids], [got[i] for i in ids]) > 0.9
    shuffled = items[:]
    random.Random(3).shuffle(shuffled)
    other = run(shuffled, fit_sample=60)
    assert other.assignments.equals(out.assignments) and other.clusters.equals(out.clusters)


def test_neighbour_labels_vote_and_refuse_far_texts() -> None:
    from trajfm.clustering.fit import label_by_neighbours

    rng = np.random.default_rng(0)
    centres = np.eye(8)[:2]  # two orthogonal directions
    fitted = np.concatenate(
        [centres[0] + 0.05 * rng.normal(size=(10, 8)), centres[1] + 0.05 * rng.normal(size=(10, 8))]
    )
    rest = np.stack([centres[0] + 0.01, centres[1] + 0.01, np.eye(8)[5]])  # near A, near B, far from both
    vecs = np.concatenate([fitted, rest])
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    labels = np.array([0] * 10 + [1] * 10)
    got = label_by_neighbours(vecs.astype(np.float32), 20, labels, k=5)
    assert got.labels.tolist() == [0, 1, -1]
    assert got.by_distance == 1
    assert got.probabilities[0] == 1.0 and got.probabilities[2] == 0.0


def test_resolve_embedder_auto_by_size_and_explicit_names_pass_through() -> None:
    from trajfm.clustering.embed import AUTO_INT8_FROM, resolve_embedder

    assert resolve_embedder("auto", AUTO_INT8_FROM - 1)[0] == "minilm"
    assert resolve_embedder("auto", AUTO_INT8_FROM, model_path="/some/model")[0] == "minilm"
    name, why = resolve_embedder("auto", AUTO_INT8_FROM)
    try:
        import onnxruntime  # noqa: F401

        assert name == "minilm-int8" and why.startswith("auto:")
    except ImportError:
        assert name == "minilm" and "not installed" in why
    for explicit in ("minilm", "minilm-int8", "fake"):
        assert resolve_embedder(explicit, 10**7) == (explicit, "as requested")


def test_run_grouped_by_text_matches_clustering_every_mode(tmp_path: Path) -> None:
    # `trajfm cluster` groups the novel modes by (title, description) in polars and clusters one item per group
    # with its count; the tables must equal clustering every mode one by one. Texts repeat (dup) and some
    # descriptions are empty, so groups of several modes, and empty texts, are both exercised.
    items, _ = make_items(per_family=12, dup=6)
    items += [Item("", t.title, "") for t in items[:5]]  # the same title with an empty description
    csv = tmp_path / "modes.csv"
    _write_csv(csv, items)
    out = run_cluster(tmp_path / "run", ClusterOptions(from_csv=csv, embedder="fake", reducer="none"))
    # the CSV path numbers the modes itself; cluster the same rows one by one, with its ids
    modes = pl.read_parquet(tmp_path / "run" / "novel_modes.parquet")
    one_by_one = [
        Item(r["novel_id"], r["title"] or "", r["description"] or "") for r in modes.iter_rows(named=True)
    ]
    assert len({(i.title, i.description) for i in one_by_one}) < len(one_by_one)  # groups really form
    cfg = ClusterConfig(reducer="none")
    ref = cluster_items(one_by_one, embedder=FakeEmbedder(), config=cfg, taxonomy=load_taxonomy("mast"))
    assert out.assignments.height == len(one_by_one)
    assert out.assignments.equals(ref.assignments)
    assert out.clusters.equals(ref.clusters)
    assert out.manifest["counts"] == ref.manifest["counts"]
    assert pl.read_parquet(tmp_path / "run" / "novel_assignments.parquet").equals(ref.assignments)


def test_sharded_novel_modes_get_sharded_assignments_equal_to_one_file(tmp_path: Path) -> None:
    # A large run's novel_modes table is a folder of shards; cluster then writes its assignments shard by shard
    # (shard i holds the modes of shard i), so memory does not grow with the run. The rows must be the ones the
    # single-file run gets, and the clusters identical.
    import shutil

    from trajfm.runfolder import RunFolder

    items, _ = make_items(per_family=12, dup=6)
    csv = tmp_path / "modes.csv"
    _write_csv(csv, items)
    whole = run_cluster(tmp_path / "whole", ClusterOptions(from_csv=csv, embedder="fake", reducer="none"))
    shutil.copytree(tmp_path / "whole", tmp_path / "sharded")
    run = RunFolder.open(tmp_path / "sharded")
    modes = run.read_table("novel_modes")
    run.remove_table("novel_modes")  # the single-file assignments stay: the sharded ones must replace them
    bounds = [0, 7, 30, modes.height]  # uneven shards, rows in a different order than novel_id
    spans = list(zip(bounds, bounds[1:], strict=False))
    for i, (lo, hi) in enumerate(spans):
        run.write_shard("novel_modes", i, modes.slice(lo, hi - lo).reverse())
    out = run_cluster(tmp_path / "sharded", ClusterOptions(embedder="fake", reducer="none"))
    assert out.assignments is None  # written to disk shard by shard, not held
    assert whole.assignments is not None
    again = RunFolder.open(tmp_path / "sharded")
    assert again.is_sharded("novel_assignments") and len(again.shard_paths("novel_assignments")) == 3
    assert not (tmp_path / "sharded" / "novel_assignments.parquet").exists()
    got = again.read_table("novel_assignments")
    assert got.sort("novel_id").equals(whole.assignments)
    for shard, (lo, hi) in zip(again.shard_paths("novel_assignments"), spans, strict=True):
        part = pl.read_parquet(shard)
        assert part["novel_id"].to_list() == sorted(modes["novel_id"][lo:hi].to_list())
    assert out.clusters.equals(whole.clusters)


def test_grouping_refuses_repeated_novel_ids() -> None:
    from trajfm.clustering.stage import _text_groups

    modes = pl.LazyFrame(
        {"novel_id": ["a", "b", "a"], "title_k": ["x", "y", "z"], "description_k": ["", "", ""]}
    )
    with pytest.raises(UsageError, match="novel_id values must be unique"):
        _text_groups(modes)
    ok = _text_groups(
        modes.with_columns(novel_id=pl.Series(["c", "b", "a"])).with_columns(title_k=pl.lit("x"))
    )
    assert ok.to_dicts() == [{"title_k": "x", "description_k": "", "novel_id": "a", "count": 3}]
