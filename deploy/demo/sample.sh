#!/usr/bin/env bash
# Writes the demo's sample city, the same on every run: three school canteens, 300 pupils in
# families sharing an account, four tariff brackets ("quotient familial"), cards, dietary flags,
# meal services, kiosk staff and back-office users. Output, into OUT_DIR:
#   pupils.csv      for `backoffice import` (accounts, pupils, brackets, cards)
#   commands.txt    the other `backoffice` commands, one a line, quoted as in a shell: tariffs,
#                   services, staff, users, opening top-ups, a lost card; what follows `|` is
#                   the command's standard input (a PIN, a password)
#   cards.txt       the sample cards the demo taps: KEY UID WHAT
# Usage: sample.sh OUT_DIR
set -euo pipefail

out="${1:?usage: sample.sh OUT_DIR}"
mkdir -p "$out"

# A fixed-seed generator in awk, so the sample needs nothing but coreutils and awk.
awk -v out="$out" '
function rand_int(n) { seed = (seed * 1103515245 + 12345) % 2147483648; return int(seed / 65536) % n }
function pick(list,   parts, count) { count = split(list, parts, " "); return parts[rand_int(count) + 1] }
function uid(n) { return sprintf("04c0de%08x", n) }
function pupil(site, account, floor, first, last, bracket, dietary, card) {
    pupils += 1
    id = sprintf("p-%04d", pupils)
    printf "%s,%s,%d,%s,%s,%s,%s,%s,%s\n", site, account, floor, id, first, last, bracket, dietary, card > csv
    return id
}
BEGIN {
    seed = 20250901
    csv = out "/pupils.csv"; commands = out "/commands.txt"; cards = out "/cards.txt"
    print "site,account,overdraft_floor,pupil,first_name,last_name,bracket,dietary,card" > csv
    girls = "Léa Emma Chloé Inès Jade Louise Alice Lina Mila Rose Anna Zoé Manon Lou Sarah Nina Camille Yasmine Aya Lucie"
    boys = "Lucas Hugo Louis Gabriel Arthur Jules Adam Nathan Raphaël Léo Tom Noah Ethan Sacha Paul Malo Yanis Rayan Timéo Samuel"
    families = "Martin Bernard Dubois Thomas Robert Richard Petit Durand Leroy Moreau Simon Laurent Lefebvre Michel Garcia David Bertrand Roux Vincent Fournier Morel Girard André Mercier Dupont Lambert Bonnet François Martinez Benali Nguyen Diallo Rousseau Blanc Guérin Muller Henry Roussel Nicolas Perrin"
    brackets = "qf1 qf2 qf3 qf4"

    # The cards the demo taps, at jaures: each shows one answer of the kiosk.
    pupil("jaures", "fam-0001", 0, "Léa", "Martin", "qf3", "", uid(1))
    pupil("jaures", "fam-0001", 0, "Hugo", "Martin", "qf3", "", uid(2))
    pupil("jaures", "fam-0002", 0, "Inès", "Benali", "qf1", "", uid(3))
    pupil("jaures", "fam-0003", -500, "Noah", "Diallo", "qf2", "no_pork|peanut_allergy", uid(4))
    pupil("jaures", "fam-0004", 0, "Jade", "Nguyen", "qf4", "vegetarian", uid(5))
    print "1 " uid(1) " Léa Martin: served, the family balance goes down" > cards
    print "2 " uid(2) " Hugo Martin, Léa'"'"'s brother: the same account" > cards
    print "3 " uid(3) " Inès Benali: balance too low, see staff" > cards
    print "4 " uid(4) " Noah Diallo: served with a dietary alert (overdraft allowed to -5,00 €)" > cards
    print "5 " uid(5) " Jade Nguyen'"'"'s lost card, blocked: see staff" > cards
    print "6 04deadbeef0001 a card nobody issued: see staff" > cards
    print "7 5a5a0001 Mme Perrin'"'"'s staff card (sign-in with PIN 1234 on the touchscreen)" > cards
    print "top-up --account fam-0001 --amount 2500 --method cash" > commands
    print "top-up --account fam-0002 --amount 50 --method cheque --reference 0012345" > commands
    print "top-up --account fam-0003 --amount 320 --method cash" > commands
    print "top-up --account fam-0004 --amount 4000 --method cash" > commands
    print "card replace --uid " uid(5) " --new-uid " uid(9999) > commands

    # Everyone else: families of one to three children at one site.
    accounts = 4
    split("jaures:120 pasteur:100 curie:80", sites, " ")
    for (s = 1; s <= 3; s++) {
        split(sites[s], parts, ":"); site = parts[1]; wanted = parts[2]
        if (site == "jaures") wanted -= 5
        while (wanted > 0) {
            accounts += 1
            account = sprintf("fam-%04d", accounts)
            last = pick(families)
            bracket = pick(brackets)
            floor = rand_int(5) == 0 ? -500 : 0
            children = 1 + rand_int(3)
            if (children > wanted) children = wanted
            for (c = 0; c < children; c++) {
                first = rand_int(2) ? pick(girls) : pick(boys)
                roll = rand_int(100)
                dietary = roll < 6 ? "no_pork" : roll < 9 ? "vegetarian" : roll < 11 ? "gluten_free" : ""
                # A few pupils have no card yet: staff serve them by name.
                card = rand_int(25) == 0 ? "" : uid(pupils + 1)
                pupil(site, account, floor, first, last, bracket, dietary, card)
            }
            wanted -= children
            # Most families prepaid 10 to 60 euros; a few are at zero.
            if (rand_int(12) != 0) {
                printf "top-up --account %s --amount %d --method %s\n", account, (10 + rand_int(51)) * 100, rand_int(3) ? "cash" : "cheque" > commands
            }
        }
    }

    # Prices per bracket, the same at every site (cents); lunch only.
    split("qf1:90 qf2:210 qf3:345 qf4:480", prices, " ")
    split("jaures pasteur curie", names, " ")
    for (s = 1; s <= 3; s++)
        for (b = 1; b <= 4; b++) {
            split(prices[b], parts, ":")
            printf "tariff set --site %s --bracket %s --meal-type lunch --price %d\n", names[s], parts[1], parts[2] > commands
        }
    # jaures serves all day, every day, so the demo answers "served" whenever it runs; the other
    # canteens keep the usual French school lunch (no school on Wednesday).
    print "service set --site jaures --id dejeuner --name Déjeuner --meal-type lunch --weekdays monday,tuesday,wednesday,thursday,friday,saturday,sunday --start 00:00 --end 23:59" > commands
    print "service set --site pasteur --id dejeuner --name Déjeuner --meal-type lunch --weekdays monday,tuesday,thursday,friday --start 11:30 --end 13:45" > commands
    print "service set --site curie --id dejeuner --name Déjeuner --meal-type lunch --weekdays monday,tuesday,thursday,friday --start 11:15 --end 13:30" > commands
    print "staff set --site jaures --id s-perrin --name '"'"'Mme Perrin'"'"'|1234" > commands
    print "card assign --uid 5a5a0001 --staff s-perrin" > commands
    print "staff set --site pasteur --id s-henry --name '"'"'M. Henry'"'"'|4321" > commands
    print "staff set --site curie --id s-roux --name '"'"'Mme Roux'"'"'|5678" > commands
    print "user add --name admin --role admin|admin-demo-2025" > commands
    print "user add --name finance --role finance|finance-demo-2025" > commands
    print "user add --name cantine-jaures --role staff --site jaures|jaures-demo-2025" > commands
}'
