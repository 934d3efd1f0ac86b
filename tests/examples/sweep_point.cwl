cwlVersion: v1.0
class: Workflow

inputs:
  dataset:
    type: string
  param_sliced_w:
    type: int
  param_sliced_d:
    type: float

outputs:
  outDS:
    type: string
    outputSource: point/outDS

steps:
  point:
    run: prun
    in:
      opt_inDS: dataset
      opt_exec:
        default: "scan.sh %IN --width %{sliced_w} --depth %{sliced_d} > point.txt"
      opt_args:
        default: "--outputs point.txt --avoidVP"
    out: [outDS]
