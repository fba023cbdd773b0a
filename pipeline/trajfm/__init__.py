"""trajfm: find out why AI agents fail.

Stage 1 (extract) diagnoses traces against a failure-mode taxonomy with evidence, stage 2 (cluster) groups novel
failure modes into families, stage 3 (report) writes an HTML report and machine-readable summaries. Stages talk
through a run folder of parquet tables (see `trajfm.runfolder` and `trajfm.schemas`).
"""

__version__ = "0.1.0"
