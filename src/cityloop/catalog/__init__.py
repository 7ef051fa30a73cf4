"""Catalog: component (部件) and event (事件) classes and each city's filing standard (立结案标准).

``workbook`` reads and writes the Excel form cities keep; ``defaults`` is the built-in catalog;
``service`` applies either to the database and answers the case loop's lookups.
"""
