"""Desensitization: a local keyring of versioned token keys and masking rules over Arrow arrays.

``mask_table`` turns valid rows of a contract's canonical schema into its published schema;
``Keyring.init`` / ``Keyring.load`` manage the key file behind ``hub keys init``.
Nothing is imported here: ``hub.settings`` imports ``masking.settings``, and DAG files
import the settings at parse time.
"""
