"""Which encoder's vectors may score which day, and the fused score's weight for a day's
vectors: what the replay and the encoder alignment both ask of the encoder registry and the
``encoder_alignment`` dataset."""

from __future__ import annotations

from mspa_tasks import registry as R
from mspa_tasks.artifacts import ArtifactStore
from mspa_tasks.datasets import ENCODER_ALIGNMENT


class EncoderLeak(RuntimeError):
    """Vectors that score day ``ds`` were encoded by an encoder aligned on ``ds`` or later."""


def check_encoder_before(warehouse_url: str, encoder_version: str, ds: str) -> None:
    """Raise :class:`EncoderLeak` when ``encoder_version`` is a registered aligned encoder
    whose pairs include day ``ds`` or a later one (the replay of ``ds`` calls this)."""
    for m in R.list_models(warehouse_url, R.ENCODER_REGISTRY):
        if m.version == encoder_version and m.ds and m.ds >= ds:
            raise EncoderLeak(f"the vectors that score {ds} were encoded by {m.version}, "
                              f"aligned on the interactions of {m.ds}: replaying {ds} with it "
                              "would score with what it learnt from that day; re-encode the "
                              "model day (mspa vectors encode) with an encoder aligned before")


def fusion_weight(store: ArtifactStore, model_day: str, encoder_version: str
                  ) -> tuple[float | None, str]:
    """The fused score's weight for vectors of ``model_day`` encoded by ``encoder_version``:
    ``(weight, where it comes from)``, or ``(None, why not)``."""
    if not ENCODER_ALIGNMENT.is_published(store, model_day):
        return None, f"no encoder alignment on {model_day}"
    manifest = ENCODER_ALIGNMENT.manifest(store, model_day)
    weight = manifest.get("fusion_weights", {}).get(encoder_version)
    if weight is None:
        return None, (f"the alignment of {model_day} chose no weight for {encoder_version}")
    return float(weight), (f"chosen on {manifest['validation_users']} validation users of "
                           f"{model_day} (encoder_alignment/ds={model_day})")


