"""Every config field bluediff knows, with documented defaults.

Experiment files import `get_config()` from here and override a few fields.
Any field can be overridden on the command line, e.g.
`--config.optim.lr=3e-4`; an unknown field is an error (the config is locked).
"""
import ml_collections


def get_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0

  # --- data: host-local numpy batches read through TFDS data sources + Grain.
  c.data = d = ml_collections.ConfigDict()
  d.dataset = "digits"        # a name in bluediff.data.DATASETS
  d.data_dir = ""             # TFDS data dir; "" = $TFDS_DATA_DIR or ~/tensorflow_datasets
  d.image_size = 16           # images are resized (square) to this on load
  d.train_split = "train"
  d.eval_split = "test"
  d.random_flip = False       # horizontal flips (never for digits)
  d.num_threads = 4           # Grain read threads per host
  d.prefetch = 8              # Grain prefetch buffer, in batches

  # --- model: a DDPM/ADM-style UNet.
  c.model = m = ml_collections.ConfigDict()
  m.name = "unet"
  m.channels = 64             # base width
  m.channel_mult = (1, 2, 2)  # one entry per resolution level
  m.num_res_blocks = 2
  m.attn_resolutions = (8,)   # spatial sizes (px) that get self-attention
  m.num_heads = 1
  m.dropout = 0.0
  m.norm_groups = 32          # GroupNorm groups (clipped to divide the width)
  m.in_channels = -1          # -1: derived from the process (data + conditioning)
  m.out_channels = -1         # -1: derived from the process (e.g. two heads)
  m.dtype = "float32"         # compute dtype; parameters stay float32
  m.conv_algorithm = "auto"   # auto: Winograd for 3x3 convs on the CPU | direct: XLA's conv
  m.patch_size = 1            # > 1: p x p patches folded into channels, the UNet at 1/p size

  # --- process: the diffusion / degradation process (bluediff.processes). One flat section
  # (so `--config.process.FIELD=` reaches any field), grouped by the process that reads each;
  # each process module's `from_config` reads its own and `meaning_fields` names them.
  c.process = p = ml_collections.ConfigDict()
  p.name = "iadb"             # iadb | blue_noise | ddpm | cold | blur_diffusion
  p.time_scale = 1.0          # the network sees t * time_scale, t in [0, 1] (1: IADB's raw alpha,
  #                             as its reference); the IADB, blue-noise, DDPM and blur presets
  #                             use 1000 (BUILD_NOTES "Time input study"), the cold ones 1
  # iadb (methods.md §1): the training alpha's law, uniform (the reference) | logit_normal
  # (the sigmoid of a standard normal: mid-alpha, where D(x_a, a) is hardest, drawn more often)
  p.alpha_sampling = "uniform"
  # blue_noise (methods.md §2): L_t = g_t I + (1 - g_t) L_b, L_b from config.noise
  p.gamma = "sigmoid"         # sigmoid | linear | cosine | constant (white fraction g(t))
  p.gamma_start = 0.0         # st
  p.gamma_end = 3.0           # en (cosine: [st, en] inside one [k, k+1], e.g. [0, 1])
  p.gamma_tau = 1000.0        # tau: 1000 ~ linear, 0.2 = blue only near the data
  p.gamma_value = 1.0         # constant: 1 = white (IADB), 0 = blue only
  p.learn_gamma = False      # learn (st, en, tau) jointly (sigmoid/cosine; clamped as the reference)
  p.learn_lr = 1e-3           # their AdamW learning rate
  p.blend = "linear"          # linear (paper) | vp (per-pixel variance preserving)
  p.parametrisation = "grid_free"   # grid_free | paper (head 2 tied to train_steps)
  p.heads = 2                 # 2 (paper) | 1 (exact only when g = a)
  p.train_steps = 1000        # T of the training grid t_k = k / T
  p.antithetic = True         # timesteps k and T + 1 - k in the two batch halves
  p.pairing = "none"          # none | greedy (reference) | exact (assignment); global batch
  p.pairing_scope = "global"  # global (the reference, over the whole batch) | shard (per device)
  # blur_diffusion (methods.md §4): Abar_{i,k} = abar_i d_k^{2 F(i)} in a rotated basis
  p.basis = "dct"             # dct (Neumann, default) | svd (the reference's zero-boundary SVD)
  p.blur_schedule = "quartic" # none (= DDPM) | linear | quadratic | cubic | quartic | log | hoogeboom
  p.blur_s0 = 0.4             # base kernel std (px)
  p.blur_s_max = 0.15         # f(N) = (s_max / s0)^2 unless blur_f_max >= 0
  p.blur_f_max = -1.0
  p.hoogeboom_s_max = 20.0    # hoogeboom only: max blur std (px), s_B(t) = s_max sin^2(pi t / 2)
  p.blur_kernel_size = 3      # taps of the sampled base kernel (svd / discrete d)
  p.blur_d = "continuous"     # dct: d_k = exp(-lambda_k s0^2 / 2) | discrete (sampled kernel)
  p.x0_min_abar = 1e-3        # sampling: x0_hat components with Abar below this are set to 0
  p.loss = "l1"               # cold: l1 (the reference) | l2
  p.generate = False          # cold: unconditional generation from a prior over x_T
  p.prior_components = 10     # cold generation: Gaussian-mixture components (full covariance)
  p.sr_factor = 0             # iadb / blue_noise: > 0 = super-resolution by this factor
  # ddpm: eps-prediction with linear betas over train_steps, DDIM sampling
  p.beta_start = 1e-4
  p.beta_end = 0.02
  p.ddim_eta = 0.0            # 0: deterministic DDIM; 1: DDPM-like ancestral noise
  p.ddpm_time_varying = False # True: the supplement's blue-noise DDIM (two heads, noise = blue)

  # --- degradation: cold diffusion's D(x0, t) (bluediff.degradations; process.name="cold").
  c.degradation = g = ml_collections.ConfigDict()
  g.kind = "blur"             # blur | inpaint | sr | desaturate | snow | noise | blend
  g.num_steps = 50            # T
  g.blur_schedule = "linear"  # std_i = blur_std + blur_std_step * i | "exp": exp(blur_std_step * i)
  g.blur_std = 0.35           # (CIFAR: 0.35 + i / 100; MNIST: constant 7 -> step 0)
  g.blur_std_step = 0.01
  g.kernel_size = 11
  g.padding = "reflect"       # reflect (the reference) | periodic
  g.mean_at_end = False       # blur generation: D(., T) = the per-channel mean
  g.mask_std = 0.1            # inpaint: s_i = mask_std * (i + mask_initial)
  g.mask_initial = 11.0
  g.random_centre = True      # inpaint: random mask centre per image (else the image centre)
  g.colour_fill = False       # inpaint: fill with a constant colour (the generation variant)
  g.reverse = False           # inpaint: the reference's --reverse (its README's generation
  #                             command): covered from the outside in, revealed centre-out
  g.blend_dataset = "cifar10" # blend (animorphosis): the dataset blended towards
  g.blend_split = "train"
  g.blend_data_dir = ""
  g.blend_targets = 1000      # blend: images of it kept on device, one picked per trajectory

  # --- noise: what the process corrupts with (bluediff.noise).
  c.noise = n = ml_collections.ConfigDict()
  n.kind = "white"            # white | blue | red
  n.root = "fft"              # blue: "fft" (symmetric, any size) | "cholesky" (paper; 64px tiles)
  n.mask_sigma = 1.5          # blue: void-and-cluster energy filter (px)
  n.num_masks = 0             # blue: masks averaged (0 = auto, ~2^18 mask pixels)
  n.jitter = 1e-4             # blue: delta added to every covariance eigenvalue
  n.stats_seed = 0            # blue: seed of the masks
  n.red_exponent = 2.0        # red: power ~ 1 / |f|^exponent

  # --- optim: AdamW with global-norm clipping, linear warmup, then a constant or cosine lr.
  c.optim = o = ml_collections.ConfigDict()
  o.lr = 1e-4
  o.warmup_steps = 0
  o.schedule = "constant"     # after warmup: "constant" | "cosine" (half cosine to
  o.final_lr_factor = 0.0     # lr x final_lr_factor at training.num_steps)
  o.weight_decay = 0.0
  o.b1 = 0.9
  o.b2 = 0.999
  o.grad_clip = 1.0           # 0 disables clipping
  o.ema_decay = 0.999         # 0 disables EMA (ema_params == params). The warm-up caps step s's
  #                             decay at (1 + s) / (10 + s) (a ~s/9-step horizon), which stays
  #                             under 0.999 until s ~ 9000: shorter runs see the warm-up's decay
  o.ema_every = 1             # update the EMA on steps s with s % ema_every == 0 (s from 0)
  o.ema_start = 0             # > 0: EMA = params on those steps while s < ema_start, then constant
  #                             decay (the cold reference: 10, 2000); 0: from step 0, with warm-up

  # --- training loop.
  c.training = t = ml_collections.ConfigDict()
  t.batch_size = 128          # GLOBAL batch, split over all devices of all hosts
  t.num_steps = 10_000
  t.log_every = 50
  t.checkpoint_every = 1000
  t.max_to_keep = 3
  t.sample_every = 0          # 0: a sample grid only at the end
  t.on_nan = "stop"           # stop: raise, naming the last good checkpoint | skip: drop the update
  t.time_budget_s = 0.0       # > 0: stop (checkpoint, sample grid) once training has run this
  #                             long (wall clock from the first step, compilation included;
  #                             checked at log intervals); 0: run num_steps
  t.grid_size = 64            # images in a sample grid

  # --- sampling (mode=sample and the sample grids).
  c.sampling = s = ml_collections.ConfigDict()
  s.method = "euler"          # a sampler of the process: euler | heun | ...
  s.num_steps = 128
  s.num_samples = 1000
  s.batch_size = 500
  s.use_ema = True

  # --- evaluation protocol (mode=evaluate); fixed here and printed.
  c.eval = e = ml_collections.ConfigDict()
  e.metrics = ("digits",)     # names in bluediff.evaluate.run.METRICS: digits, fid, kid,
  #                             precision_recall, inception_score, spectra
  e.num_samples = 1000
  e.seed = 1234
  e.sampling_steps = ()       # evaluate at each of these step counts; () = sampling.num_steps
  e.inception_weights = ""    # converted FID Inception (.safetensors); "" = $BLUEDIFF_INCEPTION_WEIGHTS
  #                             or <cache>/fid_inception_v3.safetensors
  e.inception_batch = 100     # images per Inception batch (rounded up to the device count)
  e.reference_split = ""      # "" = data.train_split (generation), data.eval_split (conditional)
  e.reference_samples = 10_000  # reference images for FID/KID/PR (0 = the whole split)
  e.kid_subsets = 100
  e.kid_subset_size = 1000
  e.pr_k = 3                  # k of the k-NN manifolds (precision/recall)
  e.is_splits = 10

  # --- device mesh: one "data" axis over every device (-1 = all).
  c.mesh = me = ml_collections.ConfigDict()
  me.data = -1
  return c


def use_time_varying_blue(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The blue-noise paper's recipe on any base config: white->blue noise with the sigmoid
  gamma (st 0, en 3, tau 1000 ~ linear), two grid-free heads, greedy pairing, FFT root."""
  c.process.name = "blue_noise"
  c.process.alpha_sampling = "uniform"   # an IADB-only lever
  c.process.gamma = "sigmoid"
  c.process.gamma_start, c.process.gamma_end, c.process.gamma_tau = 0.0, 3.0, 1000.0
  c.process.pairing = "greedy"
  c.noise.kind = "blue"
  c.noise.root = "fft"
  return c
