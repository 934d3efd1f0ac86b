# The body of the loops in iterate.cwl and iterate_each.cwl. param_* are loop parameters: %{scale} and %{shift} in
# the commands, %{i} the iteration; the junction's results.json may change them for the next iteration.
cwlVersion: v1.0
class: Workflow

inputs:
  dataset:
    type: string
  param_scale:
    type: int
    default: 10
  param_shift:
    type: float
    default: 0.25

outputs:
  outDS:
    type: string
    outputSource: validate/outDS

steps:
  fit:
    run: prun
    in:
      opt_inDS: dataset
      opt_exec:
        default: "fit.sh %IN --scale %{scale} --iteration %{i} > fit.txt"
      opt_args:
        default: "--outputs fit.txt --avoidVP"
    out: [outDS]

  validate:
    run: prun
    in:
      opt_inDS: fit/outDS
      opt_exec:
        default: "validate.sh %IN --shift %{shift} > check.root"
      opt_args:
        default: "--outputs check.root --forceStaged"
    out: [outDS]

  decide:
    run: junction
    in:
      opt_inDS:
        - fit/outDS
        - validate/outDS
      opt_exec:
        default: "decide.py %{DS1} %{DS2} > results.json"
    out: []
