"""The built-in analyses of :func:`cortexsim.analysis.run` / ``cortexsim analyze``, one module each.

Every module here is imported by :mod:`cortexsim.analysis.registry` on first use and registers
its steps with :func:`~cortexsim.analysis.registry.register_analysis`; a new analysis is a new
module here (or a ``register_analysis`` call in one's own code). Modules import their numerical
code inside the steps, so listing the analyses (``cortexsim analyze --help``) stays cheap.
"""
