"""The paper's quality filter (supplementary section 5, eqs. 10-13) as pure functions.

``protocol`` turns a pose estimator's confidences (``posedive.pose``) into ``FilterDecision``s for the
reference image (eq. 10), the rendered target (eq. 11) and the generated image (eqs. 12-13).
"""

from .protocol import FilterDecision, generated_decision, reference_decision, target_decision

__all__ = ["FilterDecision", "generated_decision", "reference_decision", "target_decision"]
