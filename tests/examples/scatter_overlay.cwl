# Scatter: overlay.cwl runs once per (signal, background) pair, then one step merges every copy's output.
cwlVersion: v1.0
class: Workflow

requirements:
  ScatterFeatureRequirement: {}
  SubworkflowFeatureRequirement: {}

inputs:
  signals: string[]
  backgrounds: string[]

outputs:
  outDS:
    type: string
    outputSource: merge/outDS

steps:
  overlay_each:
    run: overlay.cwl
    scatter: [signal, background]
    scatterMethod: dotproduct
    in:
      signal: signals
      background: backgrounds
    out: [outDS]

  merge:
    run: prun
    in:
      opt_inDS: overlay_each/outDS
      opt_exec:
        default: "hadd merged.root %IN"
      opt_args:
        default: "--outputs merged.root"
    out: [outDS]
