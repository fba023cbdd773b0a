"""Stage 2, `trajfm cluster RUN`: novel failure modes -> named, stable families, and which of them are new.

Reads RUN/novel_modes.parquet (written by `trajfm extract`), or with `from_csv` a CSV of `title,description`
(IBM TrajFM's format), which is written into RUN/novel_modes.parquet first so later stages work on it. Writes
RUN/clusters.parquet and RUN/novel_assignments.parquet (schemas in `trajfm.schemas`) and the manifest's "cluster"
section (inputs with hashes, method, chosen parameters and the scan behind them, seeds, model, counts, outliers,
stability, timings). Embeddings are cached in RUN/cache/embeddings/.

The work itself is `trajfm.clustering.fit.cluster_items`; this module does the run-folder side: inputs, the
baseline run, the namer configuration, writing tables and the manifest.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from trajfm import schemas
from trajfm.clustering.embed import Embedder, EmbeddingCache, embedder_names, get_embedder, resolve_embedder
from trajfm.clustering.fit import FIT_SAMPLE, ClusterConfig, ClusterOutcome, Item, cluster_items, embed_items
from trajfm.clustering.naming import LlmNamer
from trajfm.errors import RunFolderError, UsageError
from trajfm.runfolder import RunFolder, file_sha256
from trajfm.runlock import recover, run_lock, staged_run
from trajfm.taxonomy import load_taxonomy

CSV_ORIGIN = "csv"


@dataclass
class ClusterOptions:
    from_csv: Path | None = None
    text: str | None = None
    method: str = "hdbscan"
    baseline: Path | None = None
    seed: int = 0
    assign_outliers: bool = False
    namer: str = "keywords"
    model_path: Path | None = None
    embedder: str = "auto"
    reducer: str = "auto"
    mask_specifics: bool | None = (
        None  # None: the method's default (masked for hdbscan, raw for kmeans-silhouette)
    )
    umap_epochs: int | None = None
    fit_sample: int = FIT_SAMPLE  # 0: fit every distinct text (see clustering/fit.py)
    base_url: str | None = None
    llm_model: str | None = None
    redact: bool = False  # --namer llm: mask secrets in what is sent (as the judge's --redact)
    taxonomy: str | None = None
    engine: str = "local"  # local | ray: where the embedding step runs (trajfm.engines)
    address: str | None = None  # --engine ray: the cluster (default RAY_ADDRESS, else a local Ray)


def novel_modes_from_csv(path: Path) -> pl.DataFrame:
    """A novel_modes table from a CSV with `title` and `description` columns (other columns are ignored)."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"--from-csv {path}: no such file")
    try:
        df = pl.read_csv(path, infer_schema=False)
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError, UnicodeDecodeError) as exc:
        raise UsageError(f"--from-csv {path} is not a readable CSV: {exc}") from exc
    missing = [c for c in ("title", "description") if c not in df.columns]
    if missing:
        raise UsageError(
            f"--from-csv {path} lacks column(s) {', '.join(missing)}; it needs a header with title,description "
            f"(found: {', '.join(df.columns) or 'no columns'})"
        )
    n = df.height
    return pl.DataFrame(
        {
            # Row numbers make stable ids: the same CSV always gives the same novel_id per row.
            "novel_id": [f"csv-{i + 1:06d}" for i in range(n)],
            "trace_id": [None] * n,
            "title": df["title"].fill_null("").to_list(),
            "description": df["description"].fill_null("").to_list(),
            "steps": [[] for _ in range(n)],
            "evidence": [""] * n,
        },
        schema=schemas.NOVEL_MODES_SCHEMA,
    )


def _prepare_run(run_dir: Path, from_csv: Path | None) -> tuple[RunFolder, dict[str, Any]]:
    if from_csv is None:
        run = RunFolder.open(run_dir, need=("novel_modes",))
        path = run.table_path("novel_modes")
        return run, {"novel_modes": str(path), "novel_modes_sha256": run.table_sha256("novel_modes")}
    novel = novel_modes_from_csv(from_csv)  # read first: a bad CSV must not leave an empty run folder behind
    run = RunFolder.create(run_dir)
    stages = run.read_manifest().get("stages", {})
    if run.has("novel_modes") and (stages.get("cluster", {}).get("inputs", {}).get("origin") != CSV_ORIGIN):
        # Never overwrite what `trajfm extract` wrote: that table is another stage's output.
        raise UsageError(
            f"{run.table_path('novel_modes')} already exists and was not made from a CSV; "
            "use a new run folder with --from-csv, or drop --from-csv to cluster that run's novel modes"
        )
    run.write_table("novel_modes", novel)
    return run, {
        "origin": CSV_ORIGIN,
        "csv": str(Path(from_csv).resolve()),
        "csv_sha256": file_sha256(Path(from_csv)),
    }


def _items(df: pl.DataFrame) -> list[Item]:
    return [
        Item(str(r["novel_id"]), r["title"] or "", r["description"] or "")
        for r in df.select("novel_id", "title", "description").iter_rows(named=True)
    ]


def _repeats_an_id(modes: pl.LazyFrame) -> bool:
    """Whether a novel_id occurs twice. Checked on 64-bit hashes of the ids (8 bytes a mode, sorted in numpy:
    a set of the id strings took about 1 GB at 3 million modes); equal hashes are confirmed on the ids
    themselves, so a hash collision never refuses a run."""
    hashes = np.sort(modes.select(pl.col("novel_id").hash(seed=0)).collect(engine="streaming").to_series().to_numpy())
    if not bool((hashes[1:] == hashes[:-1]).any()):
        return False
    stats = modes.select(n=pl.len(), ids=pl.col("novel_id").n_unique()).collect(engine="streaming")
    return bool(stats["n"][0] != stats["ids"][0])


def _text_groups(modes: pl.LazyFrame) -> pl.DataFrame:
    """One row per distinct (title, description) of the novel modes: the texts, the smallest novel_id (the one
    `cluster_items` takes as a text's representative) and how many modes carry it, in a stable order. Fails
    like `cluster_items` when a novel_id repeats."""
    if _repeats_an_id(modes):
        raise UsageError("novel_id values must be unique; the input repeats at least one")
    return (
        modes.group_by("title_k", "description_k")
        .agg(pl.col("novel_id").min(), count=pl.len())
        .sort("novel_id")
        .collect(engine="streaming")
    )


def _text_keys(modes: pl.LazyFrame) -> pl.LazyFrame:
    """The three columns clustering reads of the novel modes, with the texts null-filled (the group keys)."""
    return modes.select(
        "novel_id", title_k=pl.col("title").fill_null(""), description_k=pl.col("description").fill_null("")
    )


def _keyed_assignments(groups: pl.DataFrame, per_group: pl.DataFrame) -> pl.DataFrame:
    """One assignment row per text group (`per_group` is keyed by the group's smallest novel_id), keyed by the
    group's (title_k, description_k) instead, ready to join onto the modes."""
    return (
        groups.select("title_k", "description_k", rep="novel_id")
        .join(per_group.rename({"novel_id": "rep"}), on="rep")
        .drop("rep")
    )


def _expand_assignments(modes: pl.LazyFrame, keyed: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    """The assignment of each novel mode in `modes` (the `_text_keys` columns): its text group's row of
    `keyed`, joined in polars, sorted by novel_id."""
    return (
        modes.join(keyed.lazy(), on=["title_k", "description_k"])
        .select(columns)
        .sort("novel_id")
        .collect(engine="streaming")
    )


def _write_assignment_shards(
    stage: RunFolder, run: RunFolder, keyed: pl.DataFrame, columns: list[str]
) -> None:
    """The assignments of a sharded novel_modes table, written as shards of the same partition (shard i of
    novel_assignments holds the modes of shard i of novel_modes, sorted by novel_id): only one shard's rows and
    the per-text table are in memory at a time, so the memory does not grow with the run."""
    for index, shard in enumerate(run.shard_paths("novel_modes")):
        part = pl.scan_parquet(shard, glob=False).cast(
            {c: schemas.TABLES["novel_modes"][c] for c in ("novel_id", "title", "description")}  # type: ignore[dict-item]
        )
        df = _expand_assignments(_text_keys(part), keyed, columns)
        stage.write_shard("novel_assignments", index, df)


def baseline_centroids(
    baseline_dir: Path, *, config: ClusterConfig, embedder: Embedder, cache: EmbeddingCache | None
) -> tuple[np.ndarray, dict[str, Any]]:
    """Unit centroids of a previous run's clusters (outlier group excluded), members embedded as ours are."""
    base = RunFolder.open(baseline_dir, need=("novel_modes", "novel_assignments", "clusters"))
    modes = base.read_table("novel_modes")
    assign = base.read_table("novel_assignments").filter(pl.col("cluster_id") >= 0)
    joined = assign.join(modes.select("novel_id", "title", "description"), on="novel_id", how="inner")
    info = {"path": str(Path(baseline_dir).resolve()), "clusters": 0}
    if joined.height == 0:
        return np.zeros((0, 1), dtype=np.float32), info
    items = _items(joined)
    vecs = embed_items(items, mode=config.text_mode(), masking=config.masks(), embedder=embedder, cache=cache)
    labels = np.asarray(joined["cluster_id"].to_list())
    ids = sorted(set(labels.tolist()))
    cents = []
    for c in ids:
        v = vecs[labels == c].sum(axis=0)
        cents.append(v / (np.linalg.norm(v) or 1.0))
    info["clusters"] = len(ids)
    return np.stack(cents), info


def check_options(opts: ClusterOptions) -> None:
    """Raise the option errors `run_cluster` would raise, without reading data or loading a model, so
    `trajfm run` stops before spending anything on extract when a cluster option is wrong."""
    from trajfm.clustering.clusterers import get_clusterer
    from trajfm.clustering.reduce import get_reducer

    if opts.namer not in ("keywords", "llm"):
        raise UsageError(f"--namer must be keywords or llm, got {opts.namer!r}")
    get_clusterer(opts.method)  # cheap: builds the object, fits nothing
    if opts.fit_sample < 0:
        raise UsageError(f"--fit-sample must be 0 (fit all) or a positive count, got {opts.fit_sample}")
    ClusterConfig(method=opts.method, text=opts.text).text_mode()
    if opts.reducer not in ("auto", "umap", "none", "identity"):
        get_reducer(opts.reducer)  # raises the reducer's own error naming the choices
    if opts.embedder != "auto" and opts.embedder not in embedder_names():
        get_embedder(opts.embedder)  # raises the embedder's own error naming the choices
    if opts.namer == "llm":
        LlmNamer(opts.base_url, opts.llm_model)  # raises when the endpoint or model is not configured
    if opts.baseline is not None and not Path(opts.baseline).is_dir():
        raise UsageError(
            f"--baseline {opts.baseline}: no such run folder; pass a folder an earlier run wrote"
        )


def run_cluster(run_dir: Path | str, options: ClusterOptions | None = None) -> ClusterOutcome:
    """Cluster a run's novel modes; write clusters.parquet, novel_assignments.parquet and the manifest section."""
    opts = options or ClusterOptions()
    started = time.perf_counter()
    run, inputs = _prepare_run(Path(run_dir), opts.from_csv)
    run_id = run.current_run_id()
    if opts.namer not in ("keywords", "llm"):
        raise UsageError(f"--namer must be keywords or llm, got {opts.namer!r}")
    namer = (
        LlmNamer(
            opts.base_url, opts.llm_model, redact=opts.redact, cache_path=run.cache_dir / "namer_cache.sqlite"
        )
        if opts.namer == "llm"
        else None
    )
    config = ClusterConfig(
        method=opts.method,
        text=opts.text,
        seed=opts.seed,
        assign_outliers=opts.assign_outliers,
        reducer=opts.reducer,
        umap_epochs=opts.umap_epochs,
        fit_sample=opts.fit_sample,
        mask_specifics=opts.mask_specifics,
    )
    text_mode = config.text_mode()
    extract = run.read_manifest().get("stages", {}).get("extract", {})
    taxonomy_name = opts.taxonomy or (
        extract.get("taxonomy") if isinstance(extract.get("taxonomy"), str) else None
    )
    taxonomy = load_taxonomy(taxonomy_name or "mast")
    from trajfm.engines import check_engine

    check_engine(opts.engine, opts.address)
    # Only the three columns clustering needs are read, shard by shard when the table is sharded, and grouped by
    # text in polars: a large run repeats few distinct texts, and only those become Python objects.
    modes = _text_keys(run.scan_table("novel_modes"))
    groups = _text_groups(modes)
    items = [Item(*row) for row in groups.select("novel_id", "title_k", "description_k").iter_rows()]
    counts = groups["count"].to_list()
    embedder_name, embedder_why = resolve_embedder(opts.embedder, sum(counts), model_path=opts.model_path)
    embedder: Embedder = get_embedder(embedder_name, model_path=opts.model_path)
    if opts.engine == "ray":
        from trajfm.engines.ray_embed import RayEmbedder

        embedder = RayEmbedder(embedder_name, model_path=opts.model_path, address=opts.address)
    cache = EmbeddingCache(run.cache_dir / "embeddings", embedder.model_id)

    base_cents, base_info = None, None
    if opts.baseline is not None:
        if Path(opts.baseline).resolve() == run.root.resolve():
            raise UsageError("--baseline must be another run folder, not the run being clustered")
        try:
            base_cents, base_info = baseline_centroids(
                Path(opts.baseline), config=config, embedder=embedder, cache=cache
            )
        except RunFolderError as exc:
            raise UsageError(f"--baseline {opts.baseline}: {exc}") from exc

    outcome = cluster_items(
        items,
        counts=counts,
        embedder=embedder,
        config=config,
        taxonomy=taxonomy,
        cache=cache,
        namer=namer,
        baseline_centroids=base_cents,
    )
    # A sharded novel_modes table (a large run) gets sharded assignments, written shard by shard below; a
    # single-file one gets one file, held here.
    per_group = outcome.assignments
    assert per_group is not None  # cluster_items always returns its assignments
    columns = per_group.columns
    keyed = _keyed_assignments(groups, per_group)
    sharded = run.is_sharded("novel_modes")
    outcome.assignments = None if sharded else _expand_assignments(modes, keyed, columns)
    section = {
        "inputs": inputs,
        "options": {
            "method": opts.method,
            "text": text_mode,
            "seed": opts.seed,
            "assign_outliers": opts.assign_outliers,
            "namer": opts.namer,
            "embedder": embedder_name,
            "embedder_requested": opts.embedder,
            "embedder_choice": embedder_why,
            "model_path": str(opts.model_path) if opts.model_path else None,
            "reducer": opts.reducer,
            "umap_epochs": opts.umap_epochs,
            "fit_sample": opts.fit_sample,
            "taxonomy": taxonomy.name,
            "baseline": str(opts.baseline) if opts.baseline else None,
            "engine": opts.engine,
        },
        "baseline": base_info,
        **outcome.manifest,
        "wall_s": round(time.perf_counter() - started, 3),
    }
    # The two tables and the manifest section are swapped in together, under the folder's lock, and only onto the
    # run they were computed from (an extract that replaced it meanwhile makes this stage start again).
    with run_lock(run.root, "trajfm cluster"):
        recover(run.root)
        if run.current_run_id() != run_id:
            raise RunFolderError(
                f"{run.root} was replaced by another run while clustering (run {run_id} -> "
                f"{run.current_run_id()}); run `trajfm cluster {run.root}` again"
            )
        replaces = ("clusters.parquet", "novel_assignments.parquet")
        with staged_run(run, seed_manifest=run.read_manifest(), run_id=run_id, replaces=replaces) as stage:
            stage.write_table("clusters", outcome.clusters)
            if outcome.assignments is None:
                _write_assignment_shards(stage, run, keyed, columns)
            else:
                stage.write_table("novel_assignments", outcome.assignments)
            stage.update_manifest("cluster", section)
    outcome.manifest = section
    return outcome
