package dev.recur.io;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The small JSON subset a safetensors header needs, strict enough to reject damaged headers: objects keep
 * their key order and refuse duplicate keys, numbers stay as their literal text (the header only needs
 * exact integers, see {@link #asLong}), nesting is bounded so a hostile header cannot overflow the stack.
 */
final class Json {
    /** Deeper nesting than any safetensors header has (it uses 3 levels). */
    static final int MAX_DEPTH = 64;

    /** A number literal, kept as text so no precision is lost or invented. */
    record Number(String text) {}

    /** Thrown for malformed JSON; the message says what and where (character offset). */
    static final class ParseException extends Exception {
        ParseException(String message) {
            super(message);
        }
    }

    private final String s;
    private int pos;

    private Json(String s) {
        this.s = s;
    }

    /**
     * Parses one JSON value; trailing whitespace (safetensors pads headers with spaces) is allowed,
     * anything else after the value is not. Returns {@code Map<String,Object>}, {@code List<Object>},
     * {@code String}, {@link Number}, {@code Boolean} or {@link #NULL}.
     */
    static Object parse(String text) throws ParseException {
        Json p = new Json(text);
        p.skipWhitespace();
        Object v = p.value(0);
        p.skipWhitespace();
        if (p.pos != text.length()) throw p.error("unexpected " + p.describe() + " after the end of the JSON value");
        return v;
    }

    /** JSON null, distinct from a missing key. */
    static final Object NULL = new Object() {
        @Override
        public String toString() {
            return "null";
        }
    };

    private Object value(int depth) throws ParseException {
        if (depth > MAX_DEPTH) throw error("nesting deeper than " + MAX_DEPTH + " levels");
        if (pos >= s.length()) throw error("unexpected end of input, expected a value");
        char c = s.charAt(pos);
        switch (c) {
            case '{':
                return object(depth);
            case '[':
                return array(depth);
            case '"':
                return string();
            case 't':
                literal("true");
                return Boolean.TRUE;
            case 'f':
                literal("false");
                return Boolean.FALSE;
            case 'n':
                literal("null");
                return NULL;
            default:
                if (c == '-' || (c >= '0' && c <= '9')) return number();
                throw error("unexpected " + describe() + ", expected a value");
        }
    }

    private Map<String, Object> object(int depth) throws ParseException {
        pos++; // '{'
        LinkedHashMap<String, Object> m = new LinkedHashMap<>();
        skipWhitespace();
        if (peek() == '}') {
            pos++;
            return m;
        }
        while (true) {
            skipWhitespace();
            if (peek() != '"') throw error("unexpected " + describe() + ", expected a string key");
            int keyAt = pos;
            String key = string();
            skipWhitespace();
            expect(':');
            skipWhitespace();
            Object v = value(depth + 1);
            if (m.containsKey(key)) {
                throw new ParseException("duplicate key \"" + key + "\" at character " + keyAt);
            }
            m.put(key, v);
            skipWhitespace();
            char c = peek();
            if (c == ',') {
                pos++;
            } else if (c == '}') {
                pos++;
                return m;
            } else {
                throw error("unexpected " + describe() + ", expected ',' or '}'");
            }
        }
    }

    private List<Object> array(int depth) throws ParseException {
        pos++; // '['
        List<Object> list = new ArrayList<>();
        skipWhitespace();
        if (peek() == ']') {
            pos++;
            return list;
        }
        while (true) {
            skipWhitespace();
            list.add(value(depth + 1));
            skipWhitespace();
            char c = peek();
            if (c == ',') {
                pos++;
            } else if (c == ']') {
                pos++;
                return list;
            } else {
                throw error("unexpected " + describe() + ", expected ',' or ']'");
            }
        }
    }

    private String string() throws ParseException {
        pos++; // opening quote
        StringBuilder b = new StringBuilder();
        while (true) {
            if (pos >= s.length()) throw error("unterminated string");
            char c = s.charAt(pos++);
            if (c == '"') return b.toString();
            if (c < 0x20) throw new ParseException("control character 0x" + Integer.toHexString(c) + " inside a string at character " + (pos - 1));
            if (c != '\\') {
                b.append(c);
                continue;
            }
            if (pos >= s.length()) throw error("unterminated escape");
            char e = s.charAt(pos++);
            switch (e) {
                case '"' -> b.append('"');
                case '\\' -> b.append('\\');
                case '/' -> b.append('/');
                case 'b' -> b.append('\b');
                case 'f' -> b.append('\f');
                case 'n' -> b.append('\n');
                case 'r' -> b.append('\r');
                case 't' -> b.append('\t');
                case 'u' -> {
                    if (pos + 4 > s.length()) throw error("truncated \\u escape");
                    int v = 0;
                    for (int i = 0; i < 4; i++) {
                        int d = Character.digit(s.charAt(pos + i), 16);
                        if (d < 0) throw new ParseException("bad \\u escape at character " + (pos - 2));
                        v = v * 16 + d;
                    }
                    pos += 4;
                    b.append((char) v);
                }
                default -> throw new ParseException("bad escape '\\" + e + "' at character " + (pos - 2));
            }
        }
    }

    private Number number() throws ParseException {
        int start = pos;
        if (peek() == '-') pos++;
        if (peek() == '0') {
            pos++;
        } else if (peek() >= '1' && peek() <= '9') {
            while (isDigit(peek())) pos++;
        } else {
            throw error("bad number, expected a digit");
        }
        if (peek() == '.') {
            pos++;
            if (!isDigit(peek())) throw error("bad number, expected a digit after '.'");
            while (isDigit(peek())) pos++;
        }
        if (peek() == 'e' || peek() == 'E') {
            pos++;
            if (peek() == '+' || peek() == '-') pos++;
            if (!isDigit(peek())) throw error("bad number, expected a digit in the exponent");
            while (isDigit(peek())) pos++;
        }
        return new Number(s.substring(start, pos));
    }

    private static boolean isDigit(char c) {
        return c >= '0' && c <= '9';
    }

    private void literal(String word) throws ParseException {
        if (!s.startsWith(word, pos)) throw error("unexpected " + describe() + ", expected a value");
        pos += word.length();
    }

    private void expect(char c) throws ParseException {
        if (peek() != c) throw error("unexpected " + describe() + ", expected '" + c + "'");
        pos++;
    }

    /** The current character, or NUL at the end (never valid where a token is expected). */
    private char peek() {
        return pos < s.length() ? s.charAt(pos) : '\0';
    }

    private void skipWhitespace() {
        while (pos < s.length()) {
            char c = s.charAt(pos);
            if (c != ' ' && c != '\t' && c != '\n' && c != '\r') return;
            pos++;
        }
    }

    private String describe() {
        if (pos >= s.length()) return "end of input";
        char c = s.charAt(pos);
        if (c >= 0x20 && c < 0x7f) return "'" + c + "'";
        return "character U+" + String.format("%04X", (int) c);
    }

    private ParseException error(String message) {
        return new ParseException(message + " at character " + pos);
    }

    /** The exact long value of an integer literal, or null when {@code v} is not an integer that fits in a long. */
    static Long asLong(Object v) {
        if (!(v instanceof Number n)) return null;
        String t = n.text();
        int digitsFrom = t.startsWith("-") ? 1 : 0;
        if (t.length() == digitsFrom) return null;
        for (int i = digitsFrom; i < t.length(); i++) if (!isDigit(t.charAt(i))) return null;
        // 18 digits always fit; longer literals are far beyond any size or offset a file can have.
        if (t.length() - digitsFrom > 18) return null;
        return Long.parseLong(t);
    }

    /** Appends {@code s} as a JSON string literal. */
    static void writeString(StringBuilder out, String s) {
        out.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> out.append("\\\"");
                case '\\' -> out.append("\\\\");
                case '\n' -> out.append("\\n");
                case '\r' -> out.append("\\r");
                case '\t' -> out.append("\\t");
                default -> {
                    if (c < 0x20) out.append(String.format("\\u%04x", (int) c));
                    else out.append(c);
                }
            }
        }
        out.append('"');
    }
}
