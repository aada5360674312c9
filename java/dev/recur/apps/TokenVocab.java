package dev.recur.apps;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The vocabulary of a {@link LanguageModel}: characters, or words (lower-cased; punctuation marks are tokens
 * of their own; each line break is {@link #EOS}). Id 0 is always {@link #UNK}, for anything outside the
 * vocabulary; word vocabularies have {@link #EOS} at id 1.
 */
public final class TokenVocab {
    public static final String UNK = "<unk>";
    public static final String EOS = "<eos>";
    private static final Pattern WORD = Pattern.compile("[A-Za-z]+(?:'[A-Za-z]+)*|\\n|[^\\sA-Za-z]");

    private final boolean words;
    private final List<String> tokens;
    private final Map<String, Integer> ids = new HashMap<>();

    private TokenVocab(boolean words, List<String> tokens) {
        this.words = words;
        this.tokens = List.copyOf(tokens);
        for (int i = 0; i < tokens.size(); i++) {
            if (ids.put(tokens.get(i), i) != null) throw new IllegalArgumentException("vocab: token '" + tokens.get(i) + "' appears twice");
        }
        if (!UNK.equals(tokens.get(0))) throw new IllegalArgumentException("vocab: expected " + UNK + " at id 0, got '" + tokens.get(0) + "'");
        if (words && (tokens.size() < 2 || !EOS.equals(tokens.get(1)))) {
            throw new IllegalArgumentException("vocab: a word vocabulary needs " + EOS + " at id 1");
        }
    }

    /** Every distinct character of {@code text} (in code order) after {@link #UNK}. */
    public static TokenVocab chars(String text) {
        TreeSet<Character> set = new TreeSet<>();
        for (char c : text.toCharArray()) set.add(c);
        List<String> t = new ArrayList<>();
        t.add(UNK);
        for (char c : set) t.add(String.valueOf(c));
        return new TokenVocab(false, t);
    }

    /** {@link #UNK}, {@link #EOS} and the {@code size} most frequent words of {@code text} (ties by first appearance). */
    public static TokenVocab words(String text, int size) {
        if (size <= 0) throw new IllegalArgumentException("vocab: expected > 0 words, got " + size);
        Map<String, Integer> counts = new LinkedHashMap<>();
        for (String w : split(text)) if (!w.equals("\n")) counts.merge(w, 1, Integer::sum);
        List<String> order = new ArrayList<>(counts.keySet());
        order.sort(Comparator.comparing((String w) -> -counts.get(w)));
        List<String> t = new ArrayList<>(List.of(UNK, EOS));
        t.addAll(order.subList(0, Math.min(size, order.size())));
        return new TokenVocab(true, t);
    }

    /** Rebuilds a vocabulary saved with {@link #serialize()}. */
    public static TokenVocab deserialize(boolean words, String saved) {
        List<String> t = new ArrayList<>();
        if (words) {
            t.addAll(List.of(saved.split(" ", -1)));
        } else {
            t.add(UNK);
            for (char c : saved.toCharArray()) t.add(String.valueOf(c));
        }
        return new TokenVocab(words, t);
    }

    /** Characters: the alphabet as one string; words: the tokens separated by spaces. */
    public String serialize() {
        if (words) return String.join(" ", tokens);
        StringBuilder sb = new StringBuilder();
        for (int i = 1; i < tokens.size(); i++) sb.append(tokens.get(i));
        return sb.toString();
    }

    static List<String> split(String text) {
        List<String> out = new ArrayList<>();
        Matcher m = WORD.matcher(text);
        while (m.find()) out.add(m.group().toLowerCase(Locale.ROOT));
        return out;
    }

    public boolean words() {
        return words;
    }

    public int size() {
        return tokens.size();
    }

    public String token(int id) {
        return tokens.get(id);
    }

    /** Id of a token, {@code 0} ({@link #UNK}) when unknown. */
    public int id(String token) {
        return ids.getOrDefault(token, 0);
    }

    /** The token ids of {@code text}. */
    public int[] encode(String text) {
        if (!words) {
            int[] out = new int[text.length()];
            for (int i = 0; i < out.length; i++) out[i] = id(String.valueOf(text.charAt(i)));
            return out;
        }
        List<String> w = split(text);
        int[] out = new int[w.size()];
        for (int i = 0; i < out.length; i++) out[i] = w.get(i).equals("\n") ? 1 : id(w.get(i));
        return out;
    }

    /** Text for ids: characters joined; words joined by spaces, punctuation attached, {@link #EOS} as a line break. */
    public String decode(int[] ids) {
        StringBuilder sb = new StringBuilder();
        for (int id : ids) {
            String t = tokens.get(id);
            if (!words) {
                sb.append(id == 0 ? "\uFFFD" : t);
            } else if (t.equals(EOS)) {
                sb.append('\n');
            } else {
                boolean attach = sb.isEmpty() || sb.charAt(sb.length() - 1) == '\n' || (t.length() == 1 && ",.;:!?)".contains(t));
                if (!attach) sb.append(' ');
                sb.append(t);
            }
        }
        return sb.toString();
    }
}
