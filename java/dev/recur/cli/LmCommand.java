package dev.recur.cli;

import dev.recur.apps.TextModel;
import dev.recur.apps.TokenVocab;
import dev.recur.backend.Backend;
import dev.recur.config.CellType;
import dev.recur.nn.lm.LanguageModelTrainer;
import dev.recur.nn.train.OptimizerConfig;
import dev.recur.nn.train.ParamRule;
import me.tongfei.progressbar.ProgressBar;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.io.InputStream;
import java.io.PrintWriter;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;

/** {@code recur lm}: a character- or word-level language model on a text file, with samples and perplexity. */
@Command(name = "lm", mixinStandardHelpOptions = true, versionProvider = Main.Version.class, sortOptions = false,
        description = {
                "A character- or word-level language model on a text: training, samples, perplexity, checkpoints.",
                "",
                "Train a language model (embedding, stacked LSTM or GRU, softmax over the vocabulary) on a text: the first 90%%"
                        + " for training, the last 10%% held out. Prints samples at several temperatures and the held-out"
                        + " perplexity per token; --save writes a safetensors checkpoint (parameters + vocabulary), --load"
                        + " reads one (and trains further unless --sample).",
                "Default text: 24 of Shakespeare's sonnets (data/sonnets.txt, public domain).",
                ""})
final class LmCommand implements Callable<Integer> {
    static final String DEFAULT_TEXT = "data/sonnets.txt";

    @Spec
    CommandSpec spec;

    @CommandLine.Mixin
    Main.VerboseOption verbose;

    @Option(names = "--text", paramLabel = "FILE", description = "UTF-8 text to learn (default: " + DEFAULT_TEXT + ", shipped).")
    Path text;

    @Option(names = "--words", description = "Word level: the --vocab most frequent words plus <unk> and <eos> (a line break).")
    boolean words;

    @Option(names = "--vocab", defaultValue = "300", paramLabel = "N",
            description = "Words kept with --words (default: ${DEFAULT-VALUE}; the shipped text has ~1,000 distinct words in 3,600).")
    int vocab;

    @Option(names = "--cell", defaultValue = "lstm", paramLabel = "lstm|gru", description = "Recurrent cell (default: ${DEFAULT-VALUE}).")
    String cell;

    @Option(names = "--layers", defaultValue = "2", description = "Stacked layers (default: ${DEFAULT-VALUE}).")
    int layers;

    @Option(names = "--hidden", defaultValue = "64", description = "Hidden size of each layer (default: ${DEFAULT-VALUE}).")
    int hidden;

    @Option(names = "--embedding", defaultValue = "32", description = "Token embedding width (default: ${DEFAULT-VALUE}).")
    int embedding;

    @Option(names = "--steps", description = "Training steps (default: 300 for characters; 100 for words, where the small default"
            + " text is overfitted soon after).")
    Integer steps;

    @Option(names = "--batch", defaultValue = "32", description = "Windows per step (default: ${DEFAULT-VALUE}).")
    int batch;

    @Option(names = "--seq-len", paramLabel = "T", description = "Tokens per training window (default: 48 characters, 24 words).")
    Integer seqLen;

    @Option(names = "--lr", defaultValue = "0.01", description = "Learning rate (default: ${DEFAULT-VALUE}).")
    double lr;

    @Option(names = "--optimizer", defaultValue = "adam", paramLabel = "adam|adamw|sgd",
            description = "Optimizer, as PyTorch's (default: ${DEFAULT-VALUE}); with --weight-decay, biases, layer-norm"
                    + " parameters and embeddings are left out of the decay (PyTorch's usual grouping).")
    String optimizer;

    @Option(names = "--weight-decay", defaultValue = "0", description = "Weight decay: decoupled for adamw, L2 in the"
            + " gradient for adam and sgd (default: ${DEFAULT-VALUE}).")
    double weightDecay;

    @Option(names = "--momentum", defaultValue = "0.9", description = "SGD momentum, Nesterov's (default: ${DEFAULT-VALUE};"
            + " 0: plain SGD).")
    double momentum;

    @Option(names = "--clip", defaultValue = "5", description = "Largest global gradient norm, or Infinity for none"
            + " (default: ${DEFAULT-VALUE}).")
    double clip;

    @Option(names = "--seed", defaultValue = "1", description = "Seeds the weights, the windows and the samples (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--save", paramLabel = "FILE.safetensors", description = "Write the trained model here.")
    Path save;

    @Option(names = "--load", paramLabel = "FILE.safetensors", description = "Start from this checkpoint (its shape and vocabulary).")
    Path load;

    @Option(names = "--sample", description = "Only sample from the --load checkpoint: no training, no text needed.")
    boolean sampleOnly;

    @Option(names = "--length", paramLabel = "N", description = "Tokens per sample (default: 300 characters, 60 words).")
    Integer length;

    @Option(names = "--temperatures", split = ",", defaultValue = "0.5,0.8,1.0", paramLabel = "T1,T2,...",
            description = "Sampling temperatures (default: ${DEFAULT-VALUE}).")
    List<Double> temperatures;

    @Option(names = "--prime", paramLabel = "TEXT", description = "Text the samples continue (default: a line break).")
    String prime;

    @Option(names = "--backend", paramLabel = "reference|cpu|opencl|cuda",
            description = "Where the recurrent network runs (default: the best available, see 'recur devices').")
    String backend;

    @Override
    public Integer call() throws IOException {
        CommandLine cl = spec.commandLine();
        checkOptions(cl);
        PrintWriter w = cl.getOut();
        String corpus = sampleOnly ? null : readText(cl);
        try (Backend be = AppSupport.openBackend(cl, backend); TextModel lm = model(cl, be, corpus)) {
            TokenVocab v = lm.vocab();
            TextModel.Shape s = lm.shape();
            w.printf("%s-level language model: %s, %d layer(s) of %d, embedding %d, vocabulary %d, %d parameters%n",
                    v.words() ? "word" : "character", s.cell().name(), s.layers(), s.hidden(), s.embedding(), v.size(), lm.parameters().count());
            w.printf("backend   %s (%s)%n", be.name(), be.deviceName());
            if (corpus != null) {
                int[] ids = v.encode(corpus);
                int split = (int) (ids.length * 0.9);
                int[] train = Arrays.copyOfRange(ids, 0, split), held = Arrays.copyOfRange(ids, split, ids.length);
                int t = seqLen != null ? seqLen : v.words() ? 24 : 48;
                if (train.length < t + 2) {
                    throw AppSupport.bad(cl, "--text: " + source() + " has " + train.length + " training tokens, need at least "
                            + (t + 2) + " for --seq-len " + t);
                }
                w.printf("text      %s: %d tokens, %d for training, %d held out%n", source(), ids.length, train.length, held.length);
                int n = steps != null ? steps : v.words() ? 100 : 300;
                if (n > 0) train(cl, w, lm, train, t, n);
                if (held.length >= 2) {
                    long e0 = System.nanoTime();
                    double ppl = lm.perplexity(held);
                    w.printf("held-out perplexity: %.3f per %s (%d tokens in %s)%n", ppl, v.words() ? "word" : "character",
                            held.length - 1, elapsed(e0));
                }
            }
            int n = length != null ? length : v.words() ? 60 : 300;
            int[] primeIds = primeIds(v);
            long g0 = System.nanoTime();
            int[][] outs = new int[temperatures.size()][];
            for (int i = 0; i < outs.length; i++) outs[i] = lm.sample(primeIds, n, temperatures.get(i), seed + i);
            w.printf("generated %d sample(s) of %d tokens in %s%s%n", outs.length, n, elapsed(g0),
                    lm.model().runsOnDevice() ? " on the device" : "");
            for (int i = 0; i < temperatures.size(); i++) {
                double temp = temperatures.get(i);
                int[] out = outs[i];
                // Word samples are joined with spaces; the prime needs one before the first sampled word.
                String lead = prime == null ? "" : v.words() && !Character.isWhitespace(prime.charAt(prime.length() - 1)) ? prime + " " : prime;
                w.printf("%n--- sample, temperature %s ---%n%s%s%n", trim(temp), lead, v.decode(out));
            }
            if (save != null) {
                lm.save(save);
                w.printf("%nsaved %s%n", save);
            }
        }
        w.flush();
        return 0;
    }

    /** A number as written, without an exponent or trailing zeros (1e-4 as 0.0001, 5.0 as 5). */
    private static String plain(double x) {
        return java.math.BigDecimal.valueOf(x).stripTrailingZeros().toPlainString();
    }

    /** The optimizer the options ask for (checked by {@link #validate}). */
    private OptimizerConfig optimizerConfig() {
        OptimizerConfig.Kind kind = OptimizerConfig.Kind.valueOf(optimizer.strip().toUpperCase(Locale.ROOT));
        OptimizerConfig.Builder b = OptimizerConfig.builder(kind, lr).clipNorm(clip);
        if (weightDecay > 0) b.weightDecay(weightDecay).noDecay(ParamRule.torchNoDecay());
        if (kind == OptimizerConfig.Kind.SGD && momentum > 0) b.momentum(momentum).nesterov(true);
        return b.build();
    }

    /** Time since {@code t0} (nanoTime): milliseconds below a second, where evaluation and generation usually are. */
    private static String elapsed(long t0) {
        double s = (System.nanoTime() - t0) / 1e9;
        return s < 1 ? String.format(Locale.ROOT, "%.0f ms", s * 1e3) : AppSupport.seconds(s);
    }

    private void train(CommandLine cl, PrintWriter w, TextModel lm, int[] train, int t, int steps) {
        OptimizerConfig opt = optimizerConfig();
        w.printf("training  %d steps x %d windows of %d tokens, %s lr %s%s, clip %s, seed %d%n", steps, batch, t,
                opt.kind().name().equals("ADAMW") ? "AdamW" : opt.kind().name().equals("ADAM") ? "Adam" : "SGD", plain(lr),
                weightDecay > 0 ? " weight decay " + plain(weightDecay) : "", Double.isFinite(clip) ? plain(clip) : "none", seed);
        w.flush();
        SplittableRandom rnd = new SplittableRandom(seed ^ 0x9E3779B97F4A7C15L);
        double avg = 0;
        long t0 = System.nanoTime();
        // On a device backend the trainer keeps the parameters, gradients and Adam's moments on the device: a step
        // moves the ids in and the loss out. Closing it brings the parameters back for the samples and perplexity.
        try (ProgressBar pb = AppSupport.progress(cl, "train", steps);
             LanguageModelTrainer trainer = lm.trainer(LanguageModelTrainer.Config.of(opt))) {
            for (int step = 0; step < steps; step++) {
                int[] in = new int[t * batch], tg = new int[t * batch];
                for (int b = 0; b < batch; b++) {
                    int start = rnd.nextInt(train.length - t - 1);
                    for (int i = 0; i < t; i++) {
                        in[i * batch + b] = train[start + i];
                        tg[i * batch + b] = train[start + i + 1];
                    }
                }
                double loss = trainer.step(in, tg, t, batch, seed + step);
                avg = step == 0 ? loss : 0.9 * avg + 0.1 * loss;
                pb.step();
                pb.setExtraMessage(String.format(Locale.ROOT, " loss %.3f  perplexity %.2f", avg, Math.exp(avg)));
            }
        }
        w.printf("trained in %s, final training loss %.3f (moving average)%n", AppSupport.seconds((System.nanoTime() - t0) / 1e9), avg);
    }

    private TextModel model(CommandLine cl, Backend be, String corpus) throws IOException {
        if (load != null) {
            AppSupport.readableFile(cl, "--load", load);
            try {
                return TextModel.load(load, be);
            } catch (IllegalArgumentException | IOException e) {
                throw AppSupport.bad(cl, "--load: " + e.getMessage());
            }
        }
        CellType c = CellType.valueOf(cell.toUpperCase(Locale.ROOT));
        String train = corpus.substring(0, (int) (corpus.length() * 0.9));
        TokenVocab v = words ? TokenVocab.words(train, vocab) : TokenVocab.chars(train);
        return TextModel.create(v, new TextModel.Shape(c, layers, hidden, embedding), be, seed);
    }

    private int[] primeIds(TokenVocab v) {
        if (prime != null) return v.encode(prime);
        return new int[] {v.words() ? 1 : v.id("\n")};
    }

    private void checkOptions(CommandLine cl) {
        var pr = cl.getParseResult();
        if (sampleOnly && load == null) throw new CommandLine.ParameterException(cl, "--sample: needs a model to sample from: add --load FILE");
        if (load != null) {
            for (String o : List.of("--words", "--vocab", "--cell", "--layers", "--hidden", "--embedding")) {
                if (pr.hasMatchedOption(o)) {
                    throw new CommandLine.ParameterException(cl, o + ": the model's shape and vocabulary come from the --load checkpoint; drop " + o);
                }
            }
        }
        if (sampleOnly) {
            for (String o : List.of("--text", "--steps", "--batch", "--seq-len", "--lr", "--optimizer", "--weight-decay",
                    "--momentum", "--clip")) {
                if (pr.hasMatchedOption(o)) throw new CommandLine.ParameterException(cl, o + ": --sample does not train; drop " + o);
            }
        }
        if (!cell.equalsIgnoreCase("lstm") && !cell.equalsIgnoreCase("gru")) {
            throw new CommandLine.ParameterException(cl, "--cell: expected lstm or gru, got '" + cell + "'");
        }
        AppSupport.positive(cl, "--layers", layers);
        AppSupport.positive(cl, "--hidden", hidden);
        AppSupport.positive(cl, "--embedding", embedding);
        AppSupport.positive(cl, "--vocab", vocab);
        AppSupport.positive(cl, "--batch", batch);
        if (steps != null && steps < 0) throw new CommandLine.ParameterException(cl, "--steps: expected >= 0, got " + steps);
        if (seqLen != null) AppSupport.positive(cl, "--seq-len", seqLen);
        if (length != null) AppSupport.positive(cl, "--length", length);
        if (!(lr > 0) || !Double.isFinite(lr)) throw new CommandLine.ParameterException(cl, "--lr: expected a finite value > 0, got " + lr);
        if (!List.of("adam", "adamw", "sgd").contains(optimizer.strip().toLowerCase(Locale.ROOT))) {
            throw new CommandLine.ParameterException(cl, "--optimizer: expected adam, adamw or sgd, got '" + optimizer + "'");
        }
        if (!(weightDecay >= 0) || !Double.isFinite(weightDecay)) {
            throw new CommandLine.ParameterException(cl, "--weight-decay: expected a finite value >= 0, got " + weightDecay);
        }
        if (!(momentum >= 0 && momentum < 1)) throw new CommandLine.ParameterException(cl, "--momentum: expected in [0, 1), got " + momentum);
        if (pr.hasMatchedOption("--momentum") && !optimizer.strip().equalsIgnoreCase("sgd")) {
            throw new CommandLine.ParameterException(cl, "--momentum: only for --optimizer sgd, got --optimizer " + optimizer);
        }
        if (!(clip > 0)) throw new CommandLine.ParameterException(cl, "--clip: expected > 0 (Infinity: no clipping), got " + clip);
        for (double t : temperatures) {
            if (!(t > 0) || !Double.isFinite(t)) throw new CommandLine.ParameterException(cl, "--temperatures: expected finite values > 0, got " + t);
        }
        if (prime != null && prime.isEmpty()) throw new CommandLine.ParameterException(cl, "--prime: expected at least one character, got ''");
        if (save != null) {
            Path parent = save.toAbsolutePath().getParent();
            if (Files.isDirectory(save)) throw AppSupport.bad(cl, "--save: " + save + " is a folder, expected a file name");
            if (parent == null || !Files.isDirectory(parent)) throw AppSupport.bad(cl, "--save: folder " + parent + " does not exist");
        }
    }

    private String source() {
        return text != null ? text.toString() : DEFAULT_TEXT;
    }

    /** The --text file, or the shipped default (a classpath resource), strictly decoded as UTF-8. */
    private String readText(CommandLine cl) throws IOException {
        byte[] bytes;
        if (text != null) {
            AppSupport.readableFile(cl, "--text", text);
            bytes = Files.readAllBytes(text);
        } else {
            try (InputStream in = LmCommand.class.getResourceAsStream("/" + DEFAULT_TEXT)) {
                if (in == null) throw new IOException("the default text " + DEFAULT_TEXT + " is missing from the classpath");
                bytes = in.readAllBytes();
            }
        }
        try {
            String s = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(java.nio.ByteBuffer.wrap(bytes)).toString();
            if (s.isBlank()) throw AppSupport.bad(cl, "--text: " + source() + " is empty");
            return s;
        } catch (CharacterCodingException e) {
            throw AppSupport.bad(cl, "--text: " + source() + " is not UTF-8 text (" + e.getMessage() + ")");
        }
    }

    private static String trim(double d) {
        return d == Math.rint(d) && Math.abs(d) < 1e6 ? String.format(Locale.ROOT, "%.1f", d) : Double.toString(d);
    }
}
