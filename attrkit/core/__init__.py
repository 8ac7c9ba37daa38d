"""The core: the abstract base of every method and the normalization of its arguments
(:mod:`~attrkit.core.attribution`, :mod:`~attrkit.core.call`, :mod:`~attrkit.core.targets`),
layer capture (:mod:`~attrkit.core.layers`) and the registry of methods
(:mod:`~attrkit.core.registry`). It knows no backward rule."""
