# Loops in parallel: one copy of the iterate_body.cwl loop per input dataset, each iterating on its own; then a merge.
cwlVersion: v1.0
class: Workflow

requirements:
  ScatterFeatureRequirement: {}
  SubworkflowFeatureRequirement: {}

inputs:
  datasets: string[]

outputs:
  outDS:
    type: string
    outputSource: merge/outDS

steps:
  refine_each:
    run: iterate_body.cwl
    scatter: [dataset]
    scatterMethod: dotproduct
    in:
      dataset: datasets
    out: [outDS]
    hints:
      - loop

  merge:
    run: prun
    in:
      opt_inDS: refine_each/outDS
      opt_exec:
        default: "cat %IN > summary.root"
      opt_args:
        default: "--outputs summary.root --forceStaged"
    out: [outDS]
