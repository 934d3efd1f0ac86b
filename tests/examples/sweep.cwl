# A loop over a scatter: each iteration of sweep_body.cwl runs sweep_point.cwl once per (width, depth) pair of its
# loop parameters; the junction may send new lists (so another number of points) for the next iteration.
cwlVersion: v1.0
class: Workflow

requirements:
  ScatterFeatureRequirement: {}
  SubworkflowFeatureRequirement: {}

inputs:
  sample: string

outputs:
  outDS:
    type: string
    outputSource: sweep/outDS

steps:
  sweep:
    run: sweep_body.cwl
    in:
      dataset: sample
    out: [outDS]
    hints:
      - loop
