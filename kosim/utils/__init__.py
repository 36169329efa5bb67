"""Cross-cutting helpers, one home each: typo suggestions, stderr progress lines, the rank test, device choice.

Every module here except ``device`` imports only the standard library, so the config layer can use them without
importing torch.
"""
