"""The shape every block gives (``graph``: nodes, edges and the rules on them) and its rendering (Mermaid, DOT,
JSON). Imports ``io`` and below."""
