"""The comparison report (`seqbench report DIR`) and folder comparison (`seqbench compare`).

Modules, in the order data flows: `data` (records -> frames), `stats` (t-intervals),
`leaderboard`, `figures_quality` / `figures_efficiency` (PNG via matplotlib's Agg backend),
`claims` + `claim_checks` (verdicts with named thresholds), `setup` and `sections` (the
document's parts), `markdown` / `html` (renderers of one `document.Document`), `build`
(writes the artefacts) and `compare`.
"""
