# Conditions (CWL v1.2 `when`): `use_it` runs when `produce` made output, `fall_back` only when it did not.
cwlVersion: v1.2
class: Workflow

requirements:
  InlineJavascriptRequirement: {}

inputs: []

outputs:
  used:
    type: string
    outputSource: use_it/outDS
  fallback:
    type: string
    outputSource: fall_back/outDS

steps:
  produce:
    run: prun
    in:
      opt_exec:
        default: "python make_sample.py --seed %RNDM:1000 > sample.txt"
      opt_args:
        default: "--outputs sample.txt --nJobs 2"
    out: [outDS]

  use_it:
    run: prun
    in:
      opt_inDS: produce/outDS
      opt_exec:
        default: "python analyse.py %IN > histos.txt"
      opt_args:
        default: "--outputs histos.txt --forceStaged"
    out: [outDS]
    when: $(self.opt_inDS)

  fall_back:
    run: prun
    in:
      opt_inDS: produce/outDS
      opt_exec:
        default: "echo 'no sample produced' > report.txt"
      opt_args:
        default: "--outputs report.txt"
    out: [outDS]
    when: $(!self.opt_inDS)
