/** An error message on one line: fiber-bench's usage and read errors are one line on stderr (node's parseArgs messages can span three). */
export function oneLine(message: string): string {
  return message.replace(/\s*\n\s*/g, ' ');
}
