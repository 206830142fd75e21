/** An application package: shipped module code and program jobs must be able to import it. */
export function shout(text) {
  return `${String(text).toUpperCase()}!`;
}
