cwlVersion: v1.0
class: Workflow

requirements:
  ScatterFeatureRequirement: {}
  SubworkflowFeatureRequirement: {}

inputs:
  dataset: string
  param_width:
    type: int[]
    default: [10, 20]
  param_depth:
    type: float[]
    default: [0.5, 0.75]

outputs:
  outDS:
    type: string
    outputSource: points/outDS

steps:
  points:
    run: sweep_point.cwl
    scatter: [param_sliced_w, param_sliced_d]
    scatterMethod: dotproduct
    in:
      dataset: dataset
      param_sliced_w: param_width
      param_sliced_d: param_depth
    out: [outDS]

  decide:
    run: junction
    in:
      opt_inDS: points/outDS
      opt_exec:
        default: "next_grid.py %{DS1} > results.json"
    out: []
