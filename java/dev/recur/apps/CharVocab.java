package dev.recur.apps;

import java.util.HashMap;
import java.util.Map;

/**
 * A character vocabulary with three reserved ids: {@link #PAD} 0, {@link #BOS} 1 (start), {@link #EOS} 2 (end);
 * the characters of the alphabet follow in order from id 3.
 */
public final class CharVocab {
    public static final int PAD = 0;
    public static final int BOS = 1;
    public static final int EOS = 2;
    private static final int RESERVED = 3;

    private final String alphabet;
    private final Map<Character, Integer> ids = new HashMap<>();

    public CharVocab(String alphabet) {
        if (alphabet == null || alphabet.isEmpty()) throw new IllegalArgumentException("alphabet: expected at least one character, got none");
        for (int i = 0; i < alphabet.length(); i++) {
            if (ids.put(alphabet.charAt(i), RESERVED + i) != null) {
                throw new IllegalArgumentException("alphabet: character '" + alphabet.charAt(i) + "' appears twice");
            }
        }
        this.alphabet = alphabet;
    }

    public String alphabet() {
        return alphabet;
    }

    /** Ids including the reserved ones. */
    public int size() {
        return RESERVED + alphabet.length();
    }

    public boolean contains(char c) {
        return ids.containsKey(c);
    }

    /** The ids of {@code s}; throws naming the first character outside the alphabet. */
    public int[] encode(String s) {
        int[] out = new int[s.length()];
        for (int i = 0; i < s.length(); i++) {
            Integer id = ids.get(s.charAt(i));
            if (id == null) {
                throw new IllegalArgumentException("text: character '" + s.charAt(i) + "' at index " + i + " of \"" + s
                        + "\" is not in the vocabulary");
            }
            out[i] = id;
        }
        return out;
    }

    /** The characters of {@code ids}; reserved ids are skipped. */
    public String decode(int[] ids) {
        StringBuilder sb = new StringBuilder();
        for (int id : ids) if (id >= RESERVED && id < size()) sb.append(alphabet.charAt(id - RESERVED));
        return sb.toString();
    }

    /** A printable label for one id (reserved ids as {@code <pad>}, {@code <s>}, {@code </s>}). */
    public String label(int id) {
        return switch (id) {
            case PAD -> "<pad>";
            case BOS -> "<s>";
            case EOS -> "</s>";
            default -> String.valueOf(alphabet.charAt(id - RESERVED));
        };
    }
}
