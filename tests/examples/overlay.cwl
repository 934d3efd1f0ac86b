# Several parents and secondary inputs: simulated hits are digitised with one pile-up sample, and reconstruction
# reads the hits (primary) plus the digits and a second pile-up sample (secondaries, each with its own file type and
# files per job). `seed_noise` has no input at all; `pileup_b` reads it only as a secondary input.
cwlVersion: v1.0
class: Workflow

requirements:
  MultipleInputFeatureRequirement: {}

inputs:
  signal: string
  background: string

outputs:
  outDS:
    type: string
    outputSource: reconstruct/outDS

steps:
  simulate:
    run: prun
    in:
      opt_inDS: signal
      opt_containerImage:
        default: docker://alpine:3.20
      opt_exec:
        default: "sim.sh %IN hits.dat truth.zip"
      opt_args:
        default: "--outputs hits.dat,truth.zip --nFilesPerJob 4"
    out: [outDS]

  pileup_a:
    run: prun
    in:
      opt_inDS: background
      opt_exec:
        default: "mix.sh %IN minbias.root noise.pool"
      opt_args:
        default: "--outputs minbias.root,noise.pool --nGBPerJob 5"
    out: [outDS]

  digitise:
    run: prun
    in:
      opt_inDS: simulate/outDS
      opt_inDsType:
        default: truth.zip
      opt_secondaryDSs: [pileup_a/outDS]
      opt_secondaryDsTypes:
        default: [noise.pool]
      opt_exec:
        default: "digi.sh %IN %IN2 > digits.root"
      opt_args:
        default: "--outputs digits.root --secondaryDSs IN2:3:%{SECDS1}"
    out: [outDS]

  seed_noise:
    run: prun
    in:
      opt_exec:
        default: "noise.sh %RNDM:100 > seeds.root"
      opt_args:
        default: "--outputs seeds.root --nJobs 5"
    out: [outDS]

  pileup_b:
    run: prun
    in:
      opt_inDS: background
      opt_containerImage:
        default: docker://debian:bookworm-slim
      opt_secondaryDSs: [seed_noise/outDS]
      opt_secondaryDsTypes:
        default: [seeds.root]
      opt_exec:
        default: "cavern.sh %IN %IN2 > cavern.root; date > stamp.txt"
      opt_args:
        default: "--outputs cavern.root,stamp.txt --secondaryDSs IN2:1:%{SECDS1}"
    out: [outDS]

  reconstruct:
    run: prun
    in:
      opt_inDS: simulate/outDS
      opt_inDsType:
        default: hits.dat
      opt_secondaryDSs: [digitise/outDS, pileup_b/outDS]
      opt_secondaryDsTypes:
        default: [digits.root, cavern.root]
      opt_exec:
        default: "reco.sh %IN %IN2 %IN3 > reco.root"
      opt_args:
        default: "--outputs reco.root --secondaryDSs IN2:3:%{SECDS1},IN3:4:%{SECDS2}"
    out: [outDS]
