"""The clinic domain: the touch contract (``touch``, ``properties``, ``values``), stored
events (``events``), identity resolution (``identity``) and the rule for moments
(``moments``). Imports no infrastructure.

Nothing is imported here, so ``journey.domain.touch`` (what producers need) loads
without the rest; import from the modules themselves.
"""
