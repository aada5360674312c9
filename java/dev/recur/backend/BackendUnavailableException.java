package dev.recur.backend;

/** A backend cannot be opened here (missing library, driver or device); the message says which. */
public class BackendUnavailableException extends RuntimeException {
    public BackendUnavailableException(String message) {
        super(message);
    }

    public BackendUnavailableException(String message, Throwable cause) {
        super(message, cause);
    }
}
