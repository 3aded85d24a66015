"""Composition root of the GetCourse ⇄ Salebot Telegram companion."""

__version__ = "0.1.0"
