"""Glue for the training stacks users run objspec in (Hugging Face ``transformers``, ...).

Each module imports its framework, so import the one you use:
``from objspec.integrations.transformers import EpochCallback``.
"""
