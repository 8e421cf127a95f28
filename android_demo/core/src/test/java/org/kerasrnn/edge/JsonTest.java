package org.kerasrnn.edge;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.Test;

public class JsonTest {
    @Test
    public void readsValues() {
        Map<?, ?> object = (Map<?, ?>) Json.parse(
                " {\"a\": [1, -2.5e1, true, false, null], \"s\": \"q\\\"\\\\\\/\\n\\u00e9\\ud83d\\ude00\", \"o\": {}} ");
        assertEquals(Arrays.asList(1L, -25.0, true, false, null), object.get("a"));
        assertEquals("q\"\\/\né😀", object.get("s"));
        assertTrue(((Map<?, ?>) object.get("o")).isEmpty());
        assertEquals(Arrays.asList("a", "s", "o"), Arrays.asList(object.keySet().toArray()));
        assertNull(Json.parse("null"));
        assertEquals(0.1, (Double) ((List<?>) Json.parse("[0.1]")).get(0), 0.0);
    }

    @Test
    public void rejectsWhatIsNotStrictJson() {
        String[] bad = {"", "{", "[1,]", "{\"a\":1,}", "{\"a\":1 \"b\":2}", "{a:1}", "01", "1.", "-", ".5", "1e",
            "'s'", "\"tab\there\"", "\"\\x\"", "\"\\u12\"", "{\"a\":1,\"a\":2}", "[1] 2", "tru", "// c\n1", "NaN"};
        for (String text : bad) {
            try {
                Json.parse(text);
                fail("accepted " + text);
            } catch (IllegalArgumentException e) {
                assertTrue(e.getMessage(), e.getMessage().startsWith("invalid JSON at offset "));
            }
        }
    }

    @Test
    public void limitsNesting() {
        StringBuilder deep = new StringBuilder();
        for (int i = 0; i < 100; i++) {
            deep.append('[');
        }
        try {
            Json.parse(deep.toString());
            fail("accepted 100 nested arrays");
        } catch (IllegalArgumentException e) {
            assertTrue(e.getMessage(), e.getMessage().contains("nested deeper than 64 levels"));
        }
    }
}
