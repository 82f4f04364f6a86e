import RelayCore
import Testing

@Suite("Text safe to print")
struct PrintSafeTests {
    @Test(
        "what moves the cursor, clears the screen, ends a line or reorders text is written out",
        arguments: [
            ("\u{1B}[2JALL CLEAR", "\\x1B[2JALL CLEAR"),
            ("c1\nnote:   SAFE TO PURGE", "c1\\nnote:   SAFE TO PURGE"),
            ("a\r\nb\tc\u{0}d\u{7F}", "a\\r\\nb\\tc\\0d\\x7F"),
            ("\u{9B}31m", "\\u{009B}31m"),
            ("pay\u{202E}gnp.exe", "pay\\u{202E}gnp.exe"),
            ("line\u{2028}sep\u{2066}iso\u{2069}", "line\\u{2028}sep\\u{2066}iso\\u{2069}"),
        ]
    )
    func escapes(input: String, expected: String) {
        #expect(PrintSafe.needsEscaping(input))
        #expect(PrintSafe.escape(input) == expected)
    }

    @Test(
        "everything else is left as written, backslashes, accents and punctuation included",
        arguments: ["plain ASCII 123 {\"json\": [1]}", "Zoë Ødegaard — £5 … ©", "C:\\path\\n is text", "数据 ✓", ""]
    )
    func untouched(input: String) {
        #expect(PrintSafe.escape(input) == input)
    }
}
