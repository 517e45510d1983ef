"""``synthface``: honestly labelled synthetic faces rendered from FACS action-unit intensities.

* :mod:`facs` -- the landmark template, per-AU displacements, EMFACS expression prototypes.
* :mod:`sampling` -- random identities, expressions, nuisances (pose, light, noise), clip envelopes.
* :mod:`render` -- the vectorised numpy renderer (uint8 batches, grey or RGB, any size).
* :mod:`generate` -- whole data sets: :func:`synth_expressions`, :func:`synth_action_units`,
  :func:`synth_clips` (onset-apex-offset sequences).
* :mod:`writer` -- the same faces written in the FER2013 / FER+ / RAF-DB / AffectNet / BP4D /
  DISFA layouts.
"""

from automl.data.synthface.generate import SynthSet, synth_action_units, synth_clips, synth_expressions

__all__ = ["SynthSet", "synth_action_units", "synth_clips", "synth_expressions"]
