package dev.recur.io;

import java.io.IOException;

/** A safetensors file is malformed (truncated, bad header, inconsistent offsets); the message names the file and tensor. */
public class SafeTensorsFormatException extends IOException {
    public SafeTensorsFormatException(String message) {
        super(message);
    }
}
