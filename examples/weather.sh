#!/bin/sh
# A stand-in weather service for the tools example: prints a JSON report for --city.
city=""; unit="celsius"
while [ $# -gt 0 ]; do
  case "$1" in
    --city) city="$2"; shift 2 ;;
    --unit) [ -n "$2" ] && unit="$2"; shift 2 ;;
    *) shift ;;
  esac
done
if [ -z "$city" ]; then echo "no city given" >&2; exit 2; fi
temperature=22
[ "$unit" = "fahrenheit" ] && temperature=72
printf '{"location": "%s", "temperature": "%s", "unit": "%s"}\n' "$city" "$temperature" "$unit"
