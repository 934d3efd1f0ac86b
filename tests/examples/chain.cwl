# Two prun steps in a row: `top` writes numbered text files, `bottom` reads them as they appear.
cwlVersion: v1.0
class: Workflow

inputs: []

outputs:
  outDS:
    type: string
    outputSource: bottom/outDS

steps:
  top:
    run: prun
    in:
      opt_exec:
        default: "seq 1 %RNDM:50 > numbers.txt"
      opt_args:
        default: "--outputs numbers.txt --nJobs 4 --avoidVP"
    out: [outDS]

  bottom:
    run: prun
    in:
      opt_inDS: top/outDS
      opt_exec:
        default: "wc -l %IN > counts.root"
      opt_args:
        default: "--outputs counts.root --forceStaged --avoidVP"
    out: [outDS]
