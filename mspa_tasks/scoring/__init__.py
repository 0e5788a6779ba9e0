"""Scoring and its statistics, shared by every stage that measures a model: the metric
functions (:mod:`.metrics`: AUC, UAUC, HR@K, Recall/NDCG@K, alignment), the bootstrap over
users with paired intervals (:mod:`.uncertainty`), and the reference scorers (:mod:`.baselines`:
popularity, ALS, the fused MSPA+ALS score). Pure NumPy: no store, no warehouse."""
