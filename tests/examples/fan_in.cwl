# Fan-in: a REANA step reads the outputs of two independent prun steps (a list as its input).
cwlVersion: v1.0
class: Workflow

requirements:
  MultipleInputFeatureRequirement: {}

inputs: []

outputs:
  outDS:
    type: string
    outputSource: reinterpret/outDS

steps:
  left:
    run: prun
    in:
      opt_exec:
        default: "echo left %RNDM:10 > left.txt"
      opt_args:
        default: "--outputs left.txt --nJobs 2"
    out: [outDS]

  right:
    run: prun
    in:
      opt_exec:
        default: "echo right %RNDM:10 > right.txt"
      opt_args:
        default: "--outputs right.txt --nJobs 3"
    out: [outDS]

  reinterpret:
    run: reana
    in:
      opt_inDS:
        - left/outDS
        - right/outDS
      opt_exec:
        default: "reana-client run -w reinterpretation -f reana.yaml"
      opt_args:
        default: "--outputs limits.json"
    out: [outDS]
