"""Papers reproduced as studies: each returns every number, with the paper's reported values beside jdl's.

- `glorot`: Glorot & Bengio (2010), activations, back-propagated and weight gradients and layer Jacobians at init.
- `he`: He et al. (2015), a 30-layer plain ReLU network under Xavier vs He initialization.
- `pascanu`: Pascanu, Mikolov & Bengio (2013), the one-unit recurrent model's cliff and gradient norm clipping.
- `noise_scale`: McCandlish et al. (2018), the simple noise scale B_simple during training, two estimators.
"""

from jdl.diagnostics.papers.glorot import glorot_study
from jdl.diagnostics.papers.he import he_study
from jdl.diagnostics.papers.noise_scale import noise_scale_study
from jdl.diagnostics.papers.pascanu import pascanu_study

__all__ = ["glorot_study", "he_study", "noise_scale_study", "pascanu_study"]
