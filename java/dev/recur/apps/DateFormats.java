package dev.recur.apps;

import java.time.LocalDate;
import java.time.format.DateTimeFormatter;
import java.time.format.DateTimeFormatterBuilder;
import java.time.temporal.ChronoField;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.UnaryOperator;

/**
 * Dates as people write them, generated with {@code java.time} in English ({@link Locale#US}): full and
 * abbreviated month and weekday names, ordinal days ("3rd"), numeric forms with two- and four-digit years,
 * and a few casings. The task is to turn any of them into ISO {@code yyyy-MM-dd}.
 *
 * <p>Dates range over {@link #FIRST} to {@link #LAST}, so a two-digit year is unambiguous
 * (50–99 → 19xx, 00–49 → 20xx, {@code java.time}'s reduced-year base 1950). Numeric forms with slashes are
 * month-first (US), with dots year-first or day-first, so each written form has one reading.
 */
public final class DateFormats {
    /** Earliest date generated. */
    public static final LocalDate FIRST = LocalDate.of(1950, 1, 1);
    /** Latest date generated. */
    public static final LocalDate LAST = LocalDate.of(2049, 12, 31);
    /** ISO output form. */
    public static final DateTimeFormatter ISO = DateTimeFormatter.ISO_LOCAL_DATE;

    /** One way of writing a date: a formatter and a casing. */
    public record Format(String name, DateTimeFormatter formatter, UnaryOperator<String> casing) {
        public String write(LocalDate d) {
            return casing.apply(formatter.format(d));
        }
    }

    private static final List<Format> FORMATS = build();

    private DateFormats() {}

    /** Every format, in a fixed order. */
    public static List<Format> formats() {
        return FORMATS;
    }

    private static List<Format> build() {
        Map<Long, String> ordinals = new HashMap<>();
        for (long d = 1; d <= 31; d++) ordinals.put(d, d + suffix((int) d));
        List<Format> f = new ArrayList<>();
        UnaryOperator<String> same = s -> s;
        UnaryOperator<String> lower = s -> s.toLowerCase(Locale.ROOT);
        UnaryOperator<String> upper = s -> s.toUpperCase(Locale.ROOT);
        f.add(pattern("d MMMM yyyy", same));              // 3 March 1997
        f.add(pattern("d MMM yy", same));                 // 3 Mar 97
        f.add(pattern("dd MMM yyyy", upper));             // 03 MAR 1997
        f.add(pattern("MMM d, yyyy", same));              // Mar 3, 1997
        f.add(pattern("MMMM d, yyyy", same));             // March 3, 1997
        f.add(pattern("MMMM d yyyy", lower));             // march 3 1997
        f.add(pattern("EEEE, MMMM d yyyy", same));        // Monday, March 3 1997
        f.add(pattern("EEE, d MMM yyyy", same));          // Mon, 3 Mar 1997
        f.add(pattern("EEEE d MMMM yy", same));           // Monday 3 March 97
        f.add(pattern("M/d/yy", same));                   // 3/3/97
        f.add(pattern("MM/dd/yyyy", same));               // 03/03/1997
        f.add(pattern("yyyy.MM.dd", same));               // 1997.03.03
        f.add(pattern("d.M.yyyy", same));                 // 3.3.1997
        f.add(pattern("yyyyMMdd", same));                 // 19970303
        f.add(ordinal("'the' '{d}' 'of' MMMM yyyy", ordinals, same));   // the 3rd of March 1997
        f.add(ordinal("MMMM '{d}', yyyy", ordinals, same));           // March 3rd, 1997
        f.add(ordinal("EEE '{d}' MMM yy", ordinals, lower));          // mon 3rd mar 97
        return List.copyOf(f);
    }

    private static Format pattern(String p, UnaryOperator<String> casing) {
        return new Format(p, new DateTimeFormatterBuilder().appendPattern(p)
                .toFormatter(Locale.US).withChronology(java.time.chrono.IsoChronology.INSTANCE), casing);
    }

    /** A pattern with {@code '{d}'} standing for the ordinal day, built from the same java.time builder. */
    private static Format ordinal(String p, Map<Long, String> ordinals, UnaryOperator<String> casing) {
        DateTimeFormatterBuilder b = new DateTimeFormatterBuilder();
        String[] parts = p.split("'\\{d\\}'", -1);
        for (int i = 0; i < parts.length; i++) {
            if (!parts[i].isEmpty()) b.appendPattern(parts[i]);
            if (i + 1 < parts.length) b.appendText(ChronoField.DAY_OF_MONTH, ordinals);
        }
        return new Format(p.replace("'{d}'", "d(th)"), b.toFormatter(Locale.US), casing);
    }

    static String suffix(int d) {
        if (d % 100 >= 11 && d % 100 <= 13) return "th";
        return switch (d % 10) {
            case 1 -> "st";
            case 2 -> "nd";
            case 3 -> "rd";
            default -> "th";
        };
    }

    /** A uniformly random date in [FIRST, LAST]. */
    public static LocalDate randomDate(SplittableRandom rnd) {
        return FIRST.plusDays(rnd.nextLong(LAST.toEpochDay() - FIRST.toEpochDay() + 1));
    }

    /** A date written in a uniformly chosen format. */
    public static String randomWriting(LocalDate d, SplittableRandom rnd) {
        return FORMATS.get(rnd.nextInt(FORMATS.size())).write(d);
    }

    /** Every character any format can produce (for the source vocabulary), in a fixed order. */
    public static String sourceAlphabet() {
        java.util.TreeSet<Character> chars = new java.util.TreeSet<>();
        // Every month and weekday name in every casing appears within one non-leap and one leap year.
        for (LocalDate d = LocalDate.of(1999, 12, 20); d.isBefore(LocalDate.of(2001, 1, 10)); d = d.plusDays(1)) {
            for (Format f : FORMATS) for (char c : f.write(d).toCharArray()) chars.add(c);
        }
        for (char c = '0'; c <= '9'; c++) chars.add(c);
        StringBuilder sb = new StringBuilder();
        for (char c : chars) sb.append(c);
        return sb.toString();
    }

    /** The target alphabet: digits and the dash. */
    public static String targetAlphabet() {
        return "-0123456789";
    }
}
